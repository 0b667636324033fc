# The GraphRec API. Neo4j runs in its own container (docker-compose.yml); the model artifact is
# mounted read-only at /models. Build: docker build -t graphrec .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    # One BLAS thread: the service's parallelism is concurrent requests (see graphrec/serving/blas.py).
    OPENBLAS_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY graphrec ./graphrec
COPY api ./api
COPY cypher ./cypher
# The slim install: serving imports neither torch nor PyG (graphrec[serve], no `train` extra), and
# the named analyst queries come with the wheel (share/graphrec/cypher/analyst); the sources go.
RUN pip install ".[serve]" && rm -rf /src && useradd --create-home --uid 10001 graphrec
WORKDIR /app
USER graphrec

EXPOSE 8000
ENTRYPOINT ["graphrec"]
CMD ["serve", "--model", "/models/current", "--host", "0.0.0.0", "--port", "8000"]
