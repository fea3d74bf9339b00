"""Drives headless Chromium through the console over the DevTools protocol (on a pipe, so no
WebSocket library is needed): signs in with a key, opens a page, and prints what the rendered
DOM shows as JSON. Usage: console_browser.py <base url> <api key> <page path> <screenshot.png>
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading

base_url, key, path, screenshot = sys.argv[1:5]

to_browser_read, to_browser_write = os.pipe()
from_browser_read, from_browser_write = os.pipe()


def give_pipes():
    # Chromium reads commands on fd 3 and writes answers on fd 4. Duplicated first, so neither
    # end is overwritten by the other's dup2; `pass_fds` keeps 3 and 4 open past close_fds.
    commands, answers = os.dup(to_browser_read), os.dup(from_browser_write)
    os.dup2(commands, 3)
    os.dup2(answers, 4)


profile = tempfile.mkdtemp(prefix="hookline-console-chromium-")
browser = subprocess.Popen(
    [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank",
    ],
    preexec_fn=give_pipes,
    pass_fds=(3, 4, to_browser_read, from_browser_write),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
os.close(to_browser_read)
os.close(from_browser_write)
watchdog = threading.Timer(90, browser.kill)
watchdog.start()
outgoing = os.fdopen(to_browser_write, "wb")
incoming = os.fdopen(from_browser_read, "rb")
buffer = b""
events = []  # not yet waited for
everything = []  # every event of the session, for the report
next_id = 0


def receive():
    global buffer
    while b"\0" not in buffer:
        chunk = incoming.read1(65536)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        buffer += chunk
    message, buffer = buffer.split(b"\0", 1)
    message = json.loads(message)
    if "method" in message:
        everything.append(message)
    return message


def call(method, params=None, session=None):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    outgoing.write(json.dumps(message).encode() + b"\0")
    outgoing.flush()
    while True:
        answer = receive()
        if answer.get("id") == next_id:
            if "error" in answer:
                raise SystemExit(f"{method}: {answer['error']}")
            return answer["result"]
        events.append(answer)


def wait_for(method):
    while True:
        for index, event in enumerate(events):
            if event.get("method") == method:
                del events[: index + 1]
                return event
        events.append(receive())


target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
call("Page.enable", session=session)
call("Runtime.enable", session=session)
call("Log.enable", session=session)


def open_page(url):
    call("Page.navigate", {"url": url}, session=session)
    wait_for("Page.loadEventFired")


def evaluate(expression):
    result = call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    return result["result"].get("value")


open_page(f"{base_url}/console/sign-in")
evaluate(
    "document.querySelector('#api_key').value = " + json.dumps(key) + ";"
    "document.querySelector('form.card').submit();"
)
wait_for("Page.loadEventFired")
signed_in_at = evaluate("location.pathname")
open_page(f"{base_url}{path}")
report = {
    "signed_in_at": signed_in_at,
    "path": evaluate("location.pathname"),
    "title": evaluate("document.title"),
    # textContent: the text of closed <details> too.
    "text": evaluate("document.body.textContent"),
    "htmx_loaded": evaluate("typeof htmx !== 'undefined'"),
    "injected_images": evaluate("document.querySelectorAll('img').length"),
    "scripts": evaluate("[...document.scripts].map(s => s.src || 'inline')"),
    "dialogs": sum(1 for e in everything if e.get("method") == "Page.javascriptDialogOpening"),
    "cookie_visible_to_scripts": evaluate("document.cookie"),
    "csp_violations": [
        e["params"]["entry"]["text"]
        for e in everything
        if e.get("method") == "Log.entryAdded"
        and "Content Security Policy" in e["params"]["entry"].get("text", "")
    ],
}
shot = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session)
with open(screenshot, "wb") as file:
    file.write(base64.b64decode(shot["data"]))
print(json.dumps(report))
watchdog.cancel()
browser.kill()
