"""An HTTP/2 server reached by the HTTP/1.1 Upgrade (h2c), built on the
hyper-h2 protocol stack: it answers `Upgrade: h2c` with 101, then serves
stream 1 (the upgraded request) and later streams over HTTP/2.

    python3 h2c_upgrade_server.py PORT
"""
import json
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            return
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    conn.initiate_upgrade_connection(headers["http2-settings"])
    sock.sendall(conn.data_to_send())

    def respond(stream_id, path):
        body = json.dumps({"path": path, "stream": stream_id}).encode()
        conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))])
        conn.send_data(stream_id, body, end_stream=True)

    respond(1, lines[0].split(" ")[1])
    sock.sendall(conn.data_to_send())
    data = rest
    while True:
        for event in conn.receive_data(data) if data else []:
            if isinstance(event, h2.events.RequestReceived):
                path = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v) for k, v in event.headers)[":path"]
                respond(event.stream_id, path)
            elif isinstance(event, h2.events.ConnectionTerminated):
                sock.sendall(conn.data_to_send())
                sock.close()
                return
        sock.sendall(conn.data_to_send())
        data = sock.recv(65536)
        if not data:
            sock.close()
            return


srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    s, _ = srv.accept()
    threading.Thread(target=serve, args=(s,), daemon=True).start()
