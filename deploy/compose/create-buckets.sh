#!/bin/sh
# Create each backend's bucket once the object stores answer (idempotent).
set -eu
until mc alias set eu http://seaweedfs:8333 seaweedkey seaweedsecret >/dev/null 2>&1; do sleep 1; done
until mc alias set us http://minio:9000 miniokey miniosecret >/dev/null 2>&1; do sleep 1; done
until mc mb --ignore-existing eu/skybridge-eu; do sleep 1; done
mc mb --ignore-existing us/skybridge-us
