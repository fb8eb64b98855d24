#!/bin/sh
# Says hello to its argument.
printf '%s, %s!\n' "${GREETING:-hello}" "$1"
