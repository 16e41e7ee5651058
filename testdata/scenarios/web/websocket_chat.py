"""The WebSocket scenario: a real `websockets` server and client on
127.0.0.1:8765, two connections.

Connection 1 (permessage-deflate, the library's default):
  client text "hello", server echo "echo: hello";
  client binary 0x00..0xff (256 bytes), server echo of its length;
  client ping, server pong (automatic);
  client text sent in three fragments, server echo;
  client close 1000 "bye", server close 1000 "bye".
Connection 2 (compression off): client text "plain", server echo;
  the server closes with 4001 "going away".
"""
import asyncio

import websockets


async def handler(ws):
    try:
        async for msg in ws:
            if isinstance(msg, bytes):
                await ws.send(f"got {len(msg)} bytes")
            elif msg == "plain":
                await ws.send("echo: plain")
                await ws.close(4001, "going away")
            else:
                await ws.send(f"echo: {msg}")
    except websockets.ConnectionClosed:
        pass


async def main():
    async with websockets.serve(handler, "127.0.0.1", 8765):
        async with websockets.connect("ws://127.0.0.1:8765/chat") as ws:
            await ws.send("hello")
            print(await ws.recv())
            await ws.send(bytes(range(256)))
            print(await ws.recv())
            pong = await ws.ping(b"are you there")
            await pong
            await ws.send(iter(["frag-1 ", "frag-2 ", "frag-3"]))
            print(await ws.recv())
            await ws.close(1000, "bye")
        async with websockets.connect("ws://127.0.0.1:8765/plain", compression=None) as ws:
            await ws.send("plain")
            print(await ws.recv())
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                print("closed", e.rcvd.code, e.rcvd.reason)


asyncio.run(main())
