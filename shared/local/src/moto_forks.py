# Moto servers by fork, for a process that starts many (the tests: each
# local stack gets a server of its own, so a clean account).
#
# Starting `moto_server` costs about 0.45 s of CPU importing moto, and the
# first SSM request another 1.2 s importing moto's SSM models (the public
# parameters it ships). This process pays that once: it imports moto and
# the services named on its command line, builds their Flask apps, and
# then, for each `spawn` line on stdin, binds a listening socket on a free
# loopback port and forks a server onto it, answering `<pid> <port>`. The
# fork starts with moto's state as imported: nothing in it yet.
# `stop <pid>` kills one; at end of input (the parent process is gone, or
# dropped its handle) every server still running goes, then this one.
import ctypes
import logging
import os
import signal
import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

PR_SET_PDEATHSIG = 1

app = DomainDispatcherApplication(create_backend_app)
for service in sys.argv[1:]:
    app.app_instances[service] = create_backend_app(service)

# Each request's access-log line would go to the parent's stderr.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

if threading.active_count() != 1:
    # A fork copies only the forking thread: a lock another thread held
    # would stay held in every server.
    sys.exit(f"moto_forks: {threading.active_count()} threads after import; cannot fork safely")

servers = set()


def spawn():
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
    )
    pid = os.fork()
    if pid == 0:
        try:
            # Die with this process, however it goes.
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (AttributeError, OSError):
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        try:
            server.serve_forever()
        finally:
            os._exit(0)
    server.server_close()
    servers.add(pid)
    print(pid, server.server_port, flush=True)


def stop(pid):
    if pid in servers:
        servers.discard(pid)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if words == ["spawn"]:
        spawn()
    elif len(words) == 2 and words[0] == "stop" and words[1].isdigit():
        stop(int(words[1]))
    else:
        sys.exit(f"moto_forks: unknown request {line!r}")
for pid in list(servers):
    stop(pid)
