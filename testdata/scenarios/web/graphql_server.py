"""A GraphQL server over HTTP/1.1 (Python's http.server and graphql-core):
POST /graphql with a JSON body, or GET /graphql?query=...

    python3 graphql_server.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from graphql import build_schema, graphql_sync

SCHEMA = build_schema("""
type Item { sku: String!  name: String!  quantity: Int! }
type Query { item(sku: String!): Item  items: [Item!]! }
type Mutation { addItem(sku: String!, name: String!, quantity: Int!): Item! }
""")
ITEMS = {"A-1": {"sku": "A-1", "name": "hammer", "quantity": 7}}


class Root:
    def item(self, info, sku):
        return ITEMS.get(sku)

    def items(self, info):
        return list(ITEMS.values())

    def addItem(self, info, sku, name, quantity):
        if quantity < 0:
            raise ValueError(f"quantity of {sku} must not be negative")
        ITEMS[sku] = {"sku": sku, "name": name, "quantity": quantity}
        return ITEMS[sku]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def run(self, query, variables=None, operation=None):
        result = graphql_sync(SCHEMA, query, root_value=Root(), variable_values=variables, operation_name=operation)
        out = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.run(req["query"], req.get("variables"), req.get("operationName"))

    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        self.run(q["query"][0], None, q.get("operationName", [None])[0])

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
