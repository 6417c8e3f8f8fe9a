"""``npoptim explore`` as a user starts it: a process that binds loopback, prints its URL, serves, stops on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from npoptim.cli import main

pytest.importorskip("dash")


def _terminal_signals() -> None:
    # The command as a terminal starts it: SIGINT at its default.  A child inherits an *ignored* SIGINT,
    # and then Python installs no KeyboardInterrupt handler; an earlier test in the same pytest worker
    # (the full suite under -n 2) can leave SIGINT ignored, and Ctrl-C would then not reach the server.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "npoptim.cli", "explore", "--no-browser", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_terminal_signals)
    line = proc.stdout.readline()
    if "serving on" not in line:
        proc.kill()
        pytest.fail(f"no URL printed: {line!r} {proc.stderr.read()!r}")
    return proc, line.split("serving on ")[1].split()[0]


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def get(url: str, data: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_serves_on_a_free_loopback_port_survives_bad_requests_and_stops_cleanly_on_ctrl_c():
    proc, url = start()
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        status, html = get(url)
        assert status == 200 and "npoptim explore" in html
        status, layout = get(url + "_dash-layout")
        assert status == 200 and json.loads(layout)
        # Malformed callback requests: answered, never with a traceback, and the server keeps serving.
        for body in (b"{not json", b'{"output": "view.data", "inputs": [{"id": "steps", "value": NaN}]}', b"[]"):
            status, text = get(url + "_dash-update-component", body)
            assert status >= 400 and "Traceback" not in text
        assert get(url)[0] == 200
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_a_non_loopback_host_warns():
    proc, url = start("--host", "0.0.0.0")
    code, _, err = stop(proc)
    assert code == 0 and url.startswith("http://0.0.0.0:")
    assert "anyone who can reach this machine" in err


def test_without_the_extra_it_names_the_pip_command():
    code = ("import sys; sys.modules['dash'] = None; from npoptim.cli import main; "
            "sys.exit(main(['explore', '--no-browser']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'pip install "npoptim[explore]"' in proc.stderr and "dash" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--function", "sphere"], "unknown function 'sphere'"),
    (["--function", "quadratic:dim=3"], "3-dimensional"),
    (["--optimizers", "sgd,nope"], "unknown optimizer 'nope'"),
    (["--port", "70000"], "--port 70000"),
])
def test_bad_arguments_exit_2_naming_them(args, message, capsys):
    assert main(["explore", "--no-browser", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t = time.monotonic()
        assert main(["explore", "--no-browser", "--port", str(port)]) == 2
        assert time.monotonic() - t < 30
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
