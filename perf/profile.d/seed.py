#!/usr/bin/python3
"""perf/profile.d/seed.py: create N items through the API; print "FIRST_ID LAST_ID".

  seed.py http://127.0.0.1:PORT N

One keep-alive connection, POST /v1/items with {"name":"seed-i","data":{"k":i}}.
Exits 1 on the first response that is not 201 (ringlet not ready, database
down...), so that perf/profile never profiles a service that only answers errors.
"""

import http.client
import json
import sys
import urllib.parse


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    url = urllib.parse.urlsplit(sys.argv[1])
    n = int(sys.argv[2])
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
    ids = []
    for i in range(n):
        body = json.dumps({"name": "seed-%d" % i, "data": {"k": i, "tags": ["a", "b"]}})
        conn.request("POST", "/v1/items", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 201:
            sys.stderr.write("seed: POST /v1/items -> %d %s\n" % (r.status, data[:200].decode("utf-8", "replace")))
            return 1
        ids.append(json.loads(data)["id"])
    conn.close()
    if not ids:
        print("1 1")
    else:
        print("%d %d" % (min(ids), max(ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
