"""A stand-in GitHub for benches/pulls.sh, on 127.0.0.1: open pull requests, issue comments and
commit statuses in memory; the API calls pgitops makes, plus two for the benchmark:
POST /_open {"number", "head"} and GET /_comment/<n> (pgitops' comment body, or 404).
Usage: python3 pull_forge.py PORT TOKEN"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

port, token = int(sys.argv[1]), sys.argv[2]
pulls, comments, statuses = {}, {}, []


class Forge(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null")

    def route(self):
        url = urlsplit(self.path)
        page = int(parse_qs(url.query).get("page", ["1"])[0])
        return [s for s in url.path.split("/") if s], page

    def authorized(self):
        if self.headers.get("Authorization") == "Bearer " + token:
            return True
        self.reply(401, {"message": "Bad credentials"})
        return False

    def do_GET(self):
        seg, page = self.route()
        if seg[:1] == ["_comment"]:
            mine = [b for (n, b) in comments.values() if n == int(seg[1])]
            return self.reply(200, {"body": mine[-1]}) if mine else self.reply(404, {})
        if not self.authorized():
            return
        if seg[-1] == "pulls":
            items = [{"number": n, "head": {"sha": h}, "base": {"ref": "main"}} for n, h in pulls.items()]
            return self.reply(200, items if page == 1 else [])
        if seg[-1] == "comments":
            n = int(seg[-2])
            items = [{"id": i, "body": b} for i, (p, b) in comments.items() if p == n]
            return self.reply(200, items if page == 1 else [])
        self.reply(404, {})

    def do_POST(self):
        seg, _ = self.route()
        doc = self.body()
        if seg == ["_open"]:
            pulls[int(doc["number"])] = doc["head"]
            return self.reply(200, {})
        if not self.authorized():
            return
        if seg[-1] == "comments":
            i = 1000 + len(comments)
            comments[i] = (int(seg[-2]), doc["body"])
            return self.reply(201, {"id": i, "body": doc["body"]})
        if "statuses" in seg:
            statuses.append(doc)
            return self.reply(201, {})
        self.reply(404, {})

    def do_PATCH(self):
        seg, _ = self.route()
        if not self.authorized():
            return
        i = int(seg[-1])
        if i not in comments:
            return self.reply(404, {})
        comments[i] = (comments[i][0], self.body()["body"])
        self.reply(200, {"id": i, "body": comments[i][1]})


ThreadingHTTPServer(("127.0.0.1", port), Forge).serve_forever()
