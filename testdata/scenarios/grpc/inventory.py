"""The gRPC scenario: a real grpcio server and client on 127.0.0.1:50051.

The client makes, on one channel (one HTTP/2 connection), in order:
  1. GetItem(sku="A-1")                    unary, OK
  2. ListItems(category="tools", limit=3)  server streaming, 3 items, OK
  3. AddItems(4 items), gzip-compressed    client streaming, OK
  4. Chat(2 notes)                         bidirectional, 2 replies, OK
  5. GetItem(sku="missing")                fails: NOT_FOUND (5), headers-only response
  6. ListItems(category="fail")            1 item, then fails: INTERNAL (13)

Stubs are generated at run time from inventory.proto with grpcio-tools,
which also writes the descriptor set (--descriptor-set PATH).
"""
import argparse
import os
import sys
import tempfile
import time
from concurrent import futures

import grpc
from grpc_tools import protoc

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--descriptor-set", help="also write the FileDescriptorSet here")
args = ap.parse_args()

gen = tempfile.mkdtemp()
cmd = ["protoc", f"-I{here}", f"--python_out={gen}", f"--grpc_python_out={gen}", "inventory.proto"]
if args.descriptor_set:
    cmd.insert(2, f"--descriptor_set_out={os.path.abspath(args.descriptor_set)}")
    cmd.insert(3, "--include_imports")
if protoc.main(cmd) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, gen)
import inventory_pb2 as pb  # noqa: E402
import inventory_pb2_grpc as rpc  # noqa: E402

ITEMS = {
    "A-1": pb.Item(sku="A-1", name="hammer", quantity=7, price=12.5, tags=["tools", "steel"]),
    "A-2": pb.Item(sku="A-2", name="wrench", quantity=3, price=8.25, tags=["tools"]),
    "A-3": pb.Item(sku="A-3", name="pliers", quantity=11, price=6.0, tags=["tools"]),
}


class Inventory(rpc.InventoryServicer):
    def GetItem(self, request, context):
        item = ITEMS.get(request.sku)
        if item is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.sku}")
        return item

    def ListItems(self, request, context):
        if request.category == "fail":
            yield ITEMS["A-1"]
            context.abort(grpc.StatusCode.INTERNAL, "inventory database unavailable")
        for item in list(ITEMS.values())[: request.limit]:
            yield item

    def AddItems(self, request_iterator, context):
        added = total = 0
        for item in request_iterator:
            added += 1
            total += item.quantity
        return pb.AddSummary(added=added, total_quantity=total)

    def Chat(self, request_iterator, context):
        for note in request_iterator:
            yield pb.Note(text="ack: " + note.text, seq=note.seq)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
rpc.add_InventoryServicer_to_server(Inventory(), server)
server.add_insecure_port("127.0.0.1:50051")
server.start()

with grpc.insecure_channel("127.0.0.1:50051") as channel:
    stub = rpc.InventoryStub(channel)
    print("GetItem", stub.GetItem(pb.ItemRequest(sku="A-1")).name)
    print("ListItems", [i.name for i in stub.ListItems(pb.ListRequest(category="tools", limit=3))])
    # Long, repetitive names: grpc-core sends a message compressed only when that makes it smaller.
    new = [pb.Item(sku=f"B-{n}", name=f"bolt {n} " * 40, quantity=n * 10) for n in range(1, 5)]
    print("AddItems", stub.AddItems(iter(new), compression=grpc.Compression.Gzip).added)
    print("Chat", [n.text for n in stub.Chat(iter([pb.Note(text="hello", seq=1), pb.Note(text="bye", seq=2)]))])
    for call in (lambda: stub.GetItem(pb.ItemRequest(sku="missing")), lambda: list(stub.ListItems(pb.ListRequest(category="fail")))):
        try:
            call()
        except grpc.RpcError as e:
            print("failed", e.code().name, e.details())
    time.sleep(0.2)
server.stop(0)
