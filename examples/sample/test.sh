#!/bin/sh
# The sample's test: the greeting is the one expected.
set -e
expected="hello, Gantry!"
actual="$(cat greeting.txt)"
if [ "$actual" != "$expected" ]; then
  echo "FAIL: expected '$expected', got '$actual'"
  exit 1
fi
echo "ok: $actual"
