#!/usr/bin/python3
"""lstm-serve's page in a real browser: Debian's chromium, headless, driven by chromedriver through
selenium. page_test.py URL [--screenshot PNG] [--demo]

Types "hi, i need help with my " key by key as the first speaker, waits for the chips that answer
that text, takes the first with Tab and checks the input and GET /v1/stats (one acceptance, the
words typed before it, keystroke figures by hand, latencies measured). Then: Esc dismisses, 2 takes
the second suggestion, the right arrow takes the grey completion, Enter sends the turn, and a reply
delayed in the browser's fetch to an older text is dropped instead of overwriting the newer one.
With --demo only the conversation for the screenshot is typed (no counts are checked). Prints one
line per check; exits 1 on the first that fails."""
import argparse
import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("--screenshot")
ap.add_argument("--demo", action="store_true")
ap.add_argument("--plain", metavar="TEXT", help="a plain text model: TEXT typed, a chip taken with Tab, Enter; no speakers")
args = ap.parse_args()
url = args.url if args.url.endswith("/") else args.url + "/"
speakers = json.loads(urllib.request.urlopen(url + "v1/model", timeout=10).read())["speakers"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def stats():
    with urllib.request.urlopen(url + "v1/stats", timeout=10) as r:
        return json.load(r)


def complete(text):
    """The page's completion request, sent by hand: the first line, its trailing space cut."""
    body = json.dumps({"text": text, "speaker": speakers[0], "max_new": 12, "greedy": True} if speakers else
                      {"text": text, "max_new": 12, "greedy": True}).encode()
    req = urllib.request.Request(url + "v1/complete", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["completion"].split("\n")[0].rstrip()


opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1180,780",
          "--force-device-scale-factor=1", "--lang=en-US"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    wait = WebDriverWait(drv, 30, poll_frequency=0.02)
    if not args.demo:
        check(stats()["events"] == 0, "the server starts with no events")
    drv.get(url)
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    msg = drv.find_element(By.ID, "msg")

    def value():
        return drv.execute_script("return document.getElementById('msg').value")

    def chips_for(text):
        """Waits for the chips that answer text; their words."""
        wait.until(lambda d: d.execute_script(
            "const c = document.getElementById('chips'); return c.dataset.text === arguments[0] && c.children.length > 0",
            text))
        return [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#chips .chip .w")]

    def type_keys(text):
        for ch in text:
            msg.send_keys(ch)

    def wait_stats(pred, what):
        end = time.time() + 20
        while time.time() < end:
            s = stats()
            if pred(s):
                return s
            time.sleep(0.05)
        fail(what + ": /v1/stats is " + json.dumps(stats()))

    if args.plain:
        check(speakers == [] and not drv.find_element(By.ID, "speaker").is_displayed(),
              "a model without speakers: no speaker selector")
        type_keys(args.plain)
        words = chips_for(args.plain)
        msg.send_keys(Keys.TAB)
        check(value() == args.plain + words[0] + " ", "Tab took %r: %r" % (words[0], value()))
        wait_stats(lambda s: s["accepted"] == 1, "one acceptance")
        msg.send_keys(Keys.ENTER)
        turns = drv.find_elements(By.CSS_SELECTOR, "#turns .turn")
        check(len(turns) == 1 and turns[0].text == (args.plain + words[0]).strip(), "Enter sent the turn, no speaker named")
        type_keys(args.plain)
        words = chips_for(args.plain)
        check(len(words) >= 1, "the next turn's chips, the first turn as its context: %s" % words)
        sys.exit(0)

    if args.demo:
        # as a person would: the first line takes a suggestion with Tab, the second stops mid-sentence
        type_keys("hi, i need help with my ")
        chips_for("hi, i need help with my ")
        msg.send_keys(Keys.TAB)
        msg.send_keys(Keys.ENTER)
        last = "sure! what is your "
        type_keys(last)
        chips_for(last)
        wait.until(lambda d: d.execute_script("return document.getElementById('ghost').dataset.answered === arguments[0]", last))
        time.sleep(0.3)
        drv.save_screenshot(args.screenshot)
        print("ok: screenshot " + args.screenshot)
        sys.exit(0)

    check(not speakers or drv.find_element(By.ID, "speaker").get_attribute("value") == speakers[0],
          "the speaker selector starts at the model's first speaker (%s)" % (speakers[:1] or "none"))
    prompt = "hi, i need help with my "
    type_keys(prompt)
    words = chips_for(prompt)
    check(1 <= len(words) <= 5, "chips after %r: %s" % (prompt, words))
    want = complete(prompt)
    wait.until(lambda d: d.execute_script("return document.getElementById('ghost').dataset.answered === arguments[0]", prompt))
    ghost = drv.execute_script("return document.getElementById('ghost').textContent")
    check(want.strip() != "" and ghost == prompt + want,
          "the grey completion is the server's greedy one: %r (POST /v1/complete: %r)" % (ghost[len(prompt):], want))
    msg.send_keys(Keys.TAB)
    check(value() == prompt + words[0] + " ", "Tab put %r into the input: %r" % (words[0], value()))
    typed = ["hi", "i", "need", "help", "with", "my"]
    s = wait_stats(lambda s: s["accepted"] == 1 and s["typed_words"] == len(typed) + 1, "one acceptance")
    without = sum(len(w) + 1 for w in typed) + len(words[0]) + 1
    with_ = sum(len(w) + 1 for w in typed) + 1
    check(s["accepted"] == 1 and s["typed_words"] == 7, "/v1/stats: 1 accepted of 7 words")
    check(abs(s["acceptance_rate"] - 1 / 7) < 1e-9, "acceptance rate 1/7: %g" % s["acceptance_rate"])
    check(s["keystrokes_without"] == without and s["keystrokes_with"] == with_,
          "keystrokes %g with, %g without (by hand: %d, %d)" % (s["keystrokes_with"], s["keystrokes_without"], with_, without))
    lat = s["latency_ms"]
    check(lat["n"] >= 1 and lat["p50"] > 0 and lat["p99"] >= lat["p50"] and lat["p99"] < 5000,
          "keystroke latency measured: n %d, p50 %.2f ms, p99 %.2f ms" % (lat["n"], lat["p50"], lat["p99"]))
    check(s["suggestions_shown"] == lat["n"] + 1,
          "every list shown after a key has its latency (%d), the one at page load none" % lat["n"])
    wait.until(lambda d: d.find_element(By.ID, "s-rate").text == "14.3%")
    check(True, "the stats panel shows the acceptance rate: 14.3%")

    # Esc: the chips go, an ignored event is logged; typing brings them back.
    text = value()
    chips_for(text)
    before = stats()["ignored"]
    msg.send_keys(Keys.ESCAPE)
    check(drv.execute_script("return document.getElementById('chips').children.length") == 0, "Esc dismisses the chips")
    wait_stats(lambda s: s["ignored"] == before + 1, "Esc logs an ignored list")
    check(True, "Esc logs one ignored event")

    # 2 takes the second suggestion of a partly typed word.
    type_keys("p")
    words = chips_for(text + "p")
    if len(words) >= 2:
        msg.send_keys("2")
        check(value() == text + words[1] + " ", "2 put the second suggestion %r: %r" % (words[1], value()))
        wait_stats(lambda s: s["accepted"] == 2, "a second acceptance")
    else:
        check(False, "the model gave only %s after %r: 2 cannot be tried" % (words, text + "p"))

    # Enter sends the turn: it joins the conversation, the input empties, the next speaker is selected.
    line = value().strip()
    msg.send_keys(Keys.ENTER)
    turns = drv.find_elements(By.CSS_SELECTOR, "#turns .turn")
    check(len(turns) == 1 and line in turns[0].text, "Enter sends the turn: %r" % turns[0].text if turns else "no turn")
    check(value() == "", "the input is empty after Enter")
    if len(speakers) > 1:
        check(drv.find_element(By.ID, "speaker").get_attribute("value") == speakers[1], "the next speaker is selected")

    # A reply to an older text arrives late: it is dropped, the chips answer the newer text.
    drv.execute_script("""
        const real = window.fetch;
        window.fetch = (u, o) => {
          const p = real(u, o);
          if (u === '/v1/suggest' && JSON.parse(o.body).text === 'thank') return p.then((r) => new Promise((ok) => setTimeout(() => ok(r), 400)));
          return p;
        };""")
    stale0 = int(drv.find_element(By.ID, "s-stale").text)
    type_keys("thank")
    time.sleep(0.1)  # the request for "thank" is in flight, held back
    type_keys("s")
    words = chips_for("thanks")
    stale = int(drv.find_element(By.ID, "s-stale").text)
    check(stale > stale0, "the late reply to 'thank' was dropped (%d stale)" % (stale - stale0))
    check(drv.execute_script("return document.getElementById('chips').dataset.text") == "thanks",
          "the chips answer 'thanks': %s" % words)

    # A new page (a new conversation): the same prompt, the same completion; the right arrow takes it.
    drv.refresh()
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    msg = drv.find_element(By.ID, "msg")
    type_keys(prompt)
    wait.until(lambda d: d.execute_script("return document.getElementById('ghost').dataset.answered === arguments[0]", prompt))
    check(drv.execute_script("return document.getElementById('ghost').textContent") == prompt + want,
          "after a reload the page shows the same completion")
    msg.send_keys(Keys.ARROW_RIGHT)
    check(value() == prompt + want + " ", "the right arrow takes it: %r" % value())
    if args.screenshot:
        drv.save_screenshot(args.screenshot)
        print("ok: screenshot " + args.screenshot)
finally:
    drv.quit()
