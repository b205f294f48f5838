#!/usr/bin/env python3
"""score.py - a custom evaluator for `genaiops eval` (assertion type `command`).

genaiops runs the assertion's command with one JSON object on stdin:

  {"output": "...", "prompt": "...", "vars": {...},
   "assertion": {"value": "<the command>", "threshold": 0.8 or null, "config": {...} or null}}

and reads the result from stdout: {"score": 0..1, "reason": "..."} (optionally
"pass": true/false; without it the check passes when score >= threshold,
default 0.5). A bare number or true/false works too. A non-zero exit status
is an error (not a fail), with the last line of stderr as its reason.

This one scores keyword coverage: the share of the test's `vars.keywords`
(a list, or a comma-separated text) found in the answer, case-insensitively,
minus a penalty when the answer is longer than `config.max_words`.
"""
import json
import sys


def main():
    req = json.load(sys.stdin)
    output = req.get("output") or ""
    keywords = req.get("vars", {}).get("keywords", [])
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",") if k.strip()]
    if not keywords:
        print("score.py: the test has no vars.keywords", file=sys.stderr)
        return 2
    config = req.get("assertion", {}).get("config") or {}
    text = output.lower()
    missing = [k for k in keywords if k.lower() not in text]
    score = 1 - len(missing) / len(keywords)
    reason = "%d of %d keywords present" % (len(keywords) - len(missing), len(keywords))
    if missing:
        reason += "; missing: " + ", ".join(missing)
    max_words = config.get("max_words")
    words = len(output.split())
    if isinstance(max_words, int) and words > max_words:
        score = max(0.0, score - 0.25)
        reason += "; %d words, over the limit of %d" % (words, max_words)
    print(json.dumps({"score": round(score, 4), "reason": reason}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
