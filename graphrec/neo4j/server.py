"""A real Neo4j Community server, run by GraphRec itself under ``GRAPHREC_HOME``.

The jars of ``org.neo4j:neo4j`` and its runtime dependencies are resolved once from Maven Central
with the machine's ``mvn`` (see ``pom.xml`` beside this file) into a per-user cache that outlives
any home, so every home and every test session shares one download. The server is the stock
``org.neo4j.server.CommunityEntryPoint`` on Java 17, Bolt on 127.0.0.1, auth on, with Graph Data
Science Community as a plugin. HTTP is off unless Neo4j Browser is asked for (``browser_port``), and
then it listens on loopback unless ``browser_host`` says otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from graphrec.config import Settings

NEO4J_VERSION = "5.26.30"
# Keep in step with pom.xml. GDS 2.13 is the release for Neo4j 5.26; Browser 5.24 works with it.
GDS_VERSION = "2.13.9"
BROWSER_VERSION = "5.24.0"
POM = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
MIN_PASSWORD_LENGTH = 8
# Names of the links to GDS's jars in the plugins folder (replaced at each start).
GDS_LINK_PREFIX = "graphrec-gds-"
# Neo4j Browser's HTTP port when --browser names none (Neo4j's own default).
DEFAULT_BROWSER_PORT = 7474
# Options Neo4j's own launcher passes; without them Netty and the page cache warn or run slower.
JVM_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+AlwaysPreTouch",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
]


class Neo4jServerError(RuntimeError):
    """The local server could not be set up, started or stopped; the message says why."""


def jar_cache_dir() -> Path:
    """Where resolved jars live: ``$GRAPHREC_NEO4J_CACHE`` or ``~/.cache/graphrec/neo4j-<version>``."""
    base = os.environ.get("GRAPHREC_NEO4J_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "graphrec"
    return root / f"neo4j-{NEO4J_VERSION}"


@dataclass(frozen=True)
class Jars:
    """The resolved runtime: ``lib`` (Neo4j), ``gds`` (Graph Data Science's own jars, which also go
    in the plugins folder) and ``extras`` (their other dependencies and Neo4j Browser)."""

    lib: Path
    gds: Path
    extras: Path

    @property
    def classpath(self) -> str:
        return os.pathsep.join(f"{d}/*" for d in (self.lib, self.gds, self.extras))


def ensure_jars() -> Jars:
    """Resolve the jars with Maven once; later calls return the cached directories at once.

    Neo4j's own jars stay in ``lib`` as before; GDS and Browser came later and are resolved beside
    it, so a cache made before them only downloads them (about 30 MB)."""
    root = jar_cache_dir()
    jars = Jars(root / "lib", root / f"gds-{GDS_VERSION}", root / f"extras-gds-{GDS_VERSION}-browser-{BROWSER_VERSION}")
    if (jars.lib / f"neo4j-{NEO4J_VERSION}.jar").exists() and (jars.gds / f"proc-{GDS_VERSION}.jar").exists():
        return jars
    if shutil.which("mvn") is None:
        raise Neo4jServerError("Maven ('mvn') is needed once to download Neo4j's jars; install it")
    root.mkdir(parents=True, exist_ok=True)
    # Resolve into temporary directories and rename, so a killed download never looks complete.
    everything = Path(tempfile.mkdtemp(prefix="all-", dir=root))
    gds = Path(tempfile.mkdtemp(prefix="gds-", dir=root))
    try:
        _copy_dependencies(everything)
        _copy_dependencies(gds, "-DincludeGroupIds=org.neo4j.gds")  # from Maven's local repository: no download
        for jar in gds.iterdir():
            (everything / jar.name).unlink(missing_ok=True)
        if not (jars.lib / f"neo4j-{NEO4J_VERSION}.jar").exists():
            _publish(everything, jars.lib)
            everything = Path(tempfile.mkdtemp(prefix="all-", dir=root))  # nothing extra beside a fresh lib
        else:
            for jar in jars.lib.iterdir():
                (everything / jar.name).unlink(missing_ok=True)
        _publish(everything, jars.extras)
        _publish(gds, jars.gds)  # last: its presence marks the whole runtime complete
    finally:
        shutil.rmtree(everything, ignore_errors=True)
        shutil.rmtree(gds, ignore_errors=True)
    return jars


def _copy_dependencies(out: Path, *options: str) -> None:
    cmd = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
           f"-DoutputDirectory={out}", *options]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise Neo4jServerError(f"resolving Neo4j {NEO4J_VERSION} and GDS {GDS_VERSION} with Maven failed:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final`` unless another process got there first (keep theirs)."""
    try:
        staging.rename(final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class ServerStatus:
    running: bool
    uri: str
    home: str
    pid: int | None = None
    version: str | None = None
    store_bytes: int = 0
    # Neo4j Browser's address when the server serves it (`graphrec neo4j start --browser`).
    browser: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class LocalNeo4j:
    """The Neo4j server whose files live in ``settings.home / 'neo4j'``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.home).absolute() / "neo4j"
        self.conf_dir = self.root / "conf"
        self.data_dir = self.root / "data"
        self.logs_dir = self.root / "logs"
        self.run_dir = self.root / "run"
        self.password_file = self.root / "password"
        self.state_file = self.run_dir / "server.json"

    # -- state ------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        """The running server's port, else the configured one."""
        state = self._state()
        return int(state["port"]) if state and self._alive(state.get("pid")) else self.settings.bolt_port

    def password(self) -> str:
        """``NEO4J_PASSWORD`` if set, else the password stored when this home was created."""
        if self.settings.neo4j_password is not None:
            return self.settings.neo4j_password.get_secret_value()
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        raise Neo4jServerError(
            f"no Neo4j password: set NEO4J_PASSWORD or run 'graphrec neo4j start' (home {self.root.parent})"
        )

    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(pid: int | None) -> bool:
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child (started by this very process and not yet reaped) is not alive.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return True

    def pid(self) -> int | None:
        state = self._state()
        pid = state.get("pid") if state else None
        return pid if self._alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def store_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.data_dir.rglob("*") if f.is_file()) if self.data_dir.exists() else 0

    # -- lifecycle --------------------------------------------------------------------------
    def browser_url(self) -> str | None:
        """Neo4j Browser's address while the running server serves it."""
        state = self._state()
        return state.get("browser") if state and self._alive(state.get("pid")) else None

    def _link_plugins(self, jars: Jars) -> None:
        """GDS's procedures are found only in the plugins folder: link its jars there (they are on
        the classpath too), replacing links from another GDS version; the user's own files stay."""
        plugins = self.root / "plugins"
        for entry in plugins.iterdir():
            if entry.is_symlink() and entry.name.startswith(GDS_LINK_PREFIX):
                entry.unlink()
        for jar in sorted(jars.gds.glob("*.jar")):
            (plugins / f"{GDS_LINK_PREFIX}{jar.name}").symlink_to(jar)

    def _write_config(self, port: int) -> None:
        for d in (self.conf_dir, self.data_dir, self.logs_dir, self.run_dir, self.root / "plugins", self.root / "import"):
            d.mkdir(parents=True, exist_ok=True)
        conf = {
            "server.default_listen_address": "127.0.0.1",
            "server.bolt.listen_address": f"127.0.0.1:{port}",
            "server.bolt.advertised_address": f"127.0.0.1:{port}",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            # Analysts' read-only queries must not read the server's files.
            "dbms.security.allow_csv_import_from_file_urls": "false",
            "server.directories.data": str(self.data_dir),
            "server.directories.logs": str(self.logs_dir),
            "server.directories.run": str(self.run_dir),
            "server.directories.plugins": str(self.root / "plugins"),
            "server.directories.import": str(self.root / "import"),
            "server.memory.heap.initial_size": self.settings.neo4j_heap,
            "server.memory.heap.max_size": self.settings.neo4j_heap,
            "server.memory.pagecache.size": self.settings.neo4j_pagecache,
            "db.transaction.timeout": "0",
            "db.memory.transaction.max": self.settings.neo4j_transaction_max,
            "dbms.usage_report.enabled": "false",
            # Transaction logs sized for a shop, not Neo4j's defaults: no log file preallocated to the
            # full rotation size (that was 256 MiB per database, system included, on an empty home:
            # 515 of 516 MB), files rotate at 64 MiB and about 256 MiB of them are kept per database
            # (pruned at checkpoints; recovery needs only the logs since the last one).
            "db.tx_log.preallocate": "false",
            "db.tx_log.rotation.size": "64M",
            "db.tx_log.rotation.retention_policy": "256M size",
            # Graph Data Science Community (its jars linked into the plugins folder): GDS needs
            # unrestricted access to the kernel. Community runs algorithms on at most 4 threads.
            "dbms.security.procedures.unrestricted": "gds.*",
            # Neo4j Browser, when served: it sends no usage data and fetches guides from this machine only.
            "client.allow_telemetry": "false",
            "browser.remote_content_hostname_whitelist": "localhost",
        }
        browser = self.settings.browser_port
        conf["server.http.enabled"] = "true" if browser else "false"
        if browser:
            conf["server.http.listen_address"] = f"{self.settings.browser_host}:{browser}"
            conf["server.http.advertised_address"] = f"{_url_host(self.settings.browser_host)}:{browser}"
        (self.conf_dir / "neo4j.conf").write_text("".join(f"{k}={v}\n" for k, v in conf.items()))

    def _java_env(self) -> dict[str, str]:
        return {**os.environ, "NEO4J_HOME": str(self.root), "NEO4J_CONF": str(self.conf_dir)}

    def _set_initial_password(self, classpath: str) -> None:
        """A new store gets NEO4J_PASSWORD, or a generated password kept with mode 0600."""
        if self.settings.neo4j_password is not None:
            password = self.settings.neo4j_password.get_secret_value()
            if len(password) < MIN_PASSWORD_LENGTH:  # Neo4j's own rule, checked here for a clear message
                raise Neo4jServerError(f"NEO4J_PASSWORD must have at least {MIN_PASSWORD_LENGTH} characters")
        else:
            password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        done = subprocess.run(
            # "--": a password may start with "-" (token_urlsafe does, 1 time in 64), which neo4j-admin would
            # read as an option.
            ["java", "-cp", classpath, ADMIN_CLASS, "dbms", "set-initial-password", "--", password],
            env=self._java_env(), capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise Neo4jServerError("setting the initial password failed: " + "\n".join(done.stderr.splitlines()[:3]))

    def _prepare(self, port: int) -> Jars:
        """Jars, config and plugins in place; a new home gets its password before any store exists."""
        jars = ensure_jars()
        self._write_config(port)
        self._link_plugins(jars)
        if not (self.data_dir / "dbms" / "auth.ini").exists() and not (self.data_dir / "databases").exists():
            self._set_initial_password(jars.classpath)
        return jars

    def import_full(self, arguments: list[str], *, report: Path, database: str = "neo4j",
                    max_off_heap: str = "2G", log: Path | None = None) -> None:
        """Run Neo4j's offline importer (``neo4j-admin database import full``) into ``database`` of
        this home; the server must be stopped. ``arguments`` name the CSV files (``--nodes=...``,
        ``--relationships=...``); an existing store of ``database`` is replaced."""
        if self.is_running():
            raise Neo4jServerError("the importer needs the local server stopped")
        jars = self._prepare(self.settings.bolt_port)
        heap = self.settings.neo4j_heap
        cmd = ["java", f"-Xmx{heap}", *JVM_OPTIONS, "-cp", jars.classpath, ADMIN_CLASS,
               # The database first: --nodes and --relationships take every later word as a file.
               "database", "import", "full", database, "--overwrite-destination=true", "--bad-tolerance=0",
               f"--report-file={report}", f"--max-off-heap-memory={max_off_heap}", *arguments]
        with open(log or os.devnull, "ab") as out:
            done = subprocess.run(cmd, env=self._java_env(), cwd=self.root, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            lines = log.read_text(errors="replace").splitlines() if log else []
            tail = [line for line in lines if not line.startswith("\tat ")][-15:]  # no Java stack frames
            raise Neo4jServerError(f"neo4j-admin database import failed (exit {done.returncode}):\n" + "\n".join(tail))

    def start(self, timeout: float = 180.0) -> ServerStatus:
        """Start the server and return once Bolt answers; a no-op if it already runs."""
        if self.is_running():
            return self.status()
        port = self.settings.bolt_port
        if _port_in_use(port):
            raise Neo4jServerError(
                f"port {port} on 127.0.0.1 is taken by another process; choose --bolt-port or GRAPHREC_BOLT_PORT"
            )
        browser = self.settings.browser_port
        if browser is not None and (browser == port or _port_in_use(browser, self.settings.browser_host)):
            raise Neo4jServerError(
                f"port {browser} for Neo4j Browser is taken; choose --browser-port or GRAPHREC_BROWSER_PORT"
            )
        jars = self._prepare(port)
        heap = self.settings.neo4j_heap
        cmd = ["java", f"-Xms{heap}", f"-Xmx{heap}", *JVM_OPTIONS, "-cp", jars.classpath, MAIN_CLASS,
               f"--home-dir={self.root}", f"--config-dir={self.conf_dir}"]
        console = open(self.logs_dir / "console.log", "ab")
        # A new session: the server outlives the command that started it and ignores its Ctrl-C.
        proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self._java_env(), cwd=self.root, start_new_session=True)
        console.close()
        state = {"pid": proc.pid, "port": port, "version": NEO4J_VERSION}
        if browser is not None:
            state["browser"] = f"http://{_url_host(self.settings.browser_host)}:{browser}/browser/"
        self.state_file.write_text(json.dumps(state))
        self._wait_for_bolt(proc, timeout)
        return self.status()

    def _wait_for_bolt(self, proc: subprocess.Popen, timeout: float) -> None:
        from neo4j import GraphDatabase
        from neo4j.exceptions import AuthError, ServiceUnavailable

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise Neo4jServerError(f"Neo4j exited with code {proc.returncode} while starting:\n{self._log_tail()}")
            if _port_in_use(self.settings.bolt_port):
                try:
                    with GraphDatabase.driver(self.uri, auth=(self.settings.neo4j_user, self.password())) as drv:
                        drv.verify_connectivity()
                    return
                except AuthError as err:
                    self.stop()
                    raise Neo4jServerError(
                        f"Neo4j at {self.uri} refused the credentials: {err.message}. The home {self.root.parent} "
                        "was created with another password; set NEO4J_PASSWORD to it"
                    ) from None
                except (ServiceUnavailable, OSError):
                    pass
            time.sleep(0.5)
        self.stop()
        raise Neo4jServerError(f"Neo4j did not answer on {self.uri} within {timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        log = self.logs_dir / "neo4j.log"
        if not log.exists():
            log = self.logs_dir / "console.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 120.0) -> bool:
        """Shut down cleanly (SIGTERM, then wait); True if a server was running."""
        pid = self.pid()
        if pid is None:
            self.state_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return True

    def status(self) -> ServerStatus:
        pid = self.pid()
        status = ServerStatus(running=pid is not None, uri=self.uri, home=str(self.root.parent), pid=pid,
                              store_bytes=self.store_bytes(), browser=self.browser_url())
        if pid is not None:
            from neo4j import GraphDatabase

            try:
                with GraphDatabase.driver(self.uri, auth=(self.settings.neo4j_user, self.password())) as drv:
                    records, _, _ = drv.execute_query("CALL dbms.components() YIELD versions RETURN versions[0] AS v")
                    status.version = records[0]["v"]
            except Exception:  # a server still starting has no version yet; status must not fail
                status.version = None
        return status


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((target, port)) == 0


def _url_host(host: str) -> str:
    """The host to put in a URL for a listen address: loopback for 'every interface'."""
    if host in ("0.0.0.0", "", "::", "[::]"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for tests and side-by-side homes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
