# The GraphRec API. Neo4j runs in its own container (docker-compose.yml); the model artifact is
# mounted read-only at /models. Build: docker build -t graphrec .
FROM python:3.11-slim

WORKDIR /app
# CPU-only torch: serving never trains, and the CUDA wheels are gigabytes.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    # One BLAS thread: the service's parallelism is concurrent requests (see graphrec/serving/blas.py).
    OPENBLAS_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1

COPY pyproject.toml README.md ./
COPY graphrec ./graphrec
COPY api ./api
COPY cypher ./cypher
# Editable, so cypher/analyst/ is found beside the package as in a checkout.
RUN pip install -e . && useradd --create-home --uid 10001 graphrec
USER graphrec

EXPOSE 8000
ENTRYPOINT ["graphrec"]
CMD ["serve", "--model", "/models/current", "--host", "0.0.0.0", "--port", "8000"]
