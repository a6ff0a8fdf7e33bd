"""A local Web Push service for the black-box tests, independent of HomeTrip's code.

It plays both the browser and the push service: it makes the subscription's
keys (a P-256 key pair and a 16-byte auth secret), prints them as one JSON
line, then serves POST /push/<name>. Each push must carry a VAPID
`Authorization: vapid t=<JWT>, k=<key>` header (RFC 8292) whose ES256
signature verifies under `k`, whose `aud` is this service's origin, whose
`exp` is within 24 hours and whose `sub` is a mailto: or https: contact;
its body is decrypted with http_ece (RFC 8188/8291, aes128gcm). Accepted
pushes are listed, decrypted, at GET /received. POST /push/gone answers 410,
POST /push/broken always 500.
"""

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC = PRIVATE.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
AUTH = bytes(range(16))
RECEIVED = []


def check_vapid(header, origin):
    if not header or not header.startswith("vapid "):
        return "no vapid authorization"
    fields = dict(part.strip().split("=", 1) for part in header[len("vapid "):].split(","))
    token, key = fields.get("t"), fields.get("k")
    if not token or not key:
        return "vapid needs t and k"
    head, claims, signature = token.split(".")
    if json.loads(b64url_decode(head)).get("alg") != "ES256":
        return "alg is not ES256"
    raw = b64url_decode(signature)
    if len(raw) != 64:
        return "ES256 signatures are 64 bytes"
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    try:
        public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "bad signature"
    claims = json.loads(b64url_decode(claims))
    if claims.get("aud") != origin:
        return f"aud {claims.get('aud')!r} is not {origin!r}"
    if not (time.time() < claims.get("exp", 0) <= time.time() + 86400):
        return "exp out of range"
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "sub is not a contact"
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/received":
            return self.answer(200, json.dumps(RECEIVED).encode())
        self.answer(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/push/gone":
            return self.answer(410)
        if self.path == "/push/broken":
            return self.answer(500, b"always failing")
        origin = f"http://{self.headers['Host']}"
        problem = check_vapid(self.headers.get("Authorization"), origin)
        if problem:
            return self.answer(401, problem.encode())
        if self.headers.get("Content-Encoding") != "aes128gcm" or not self.headers.get("TTL"):
            return self.answer(400, b"aes128gcm and TTL required")
        try:
            plain = http_ece.decrypt(body, private_key=PRIVATE, auth_secret=AUTH, version="aes128gcm")
        except Exception as e:  # noqa: BLE001 - any failure to decrypt is the client's
            return self.answer(400, f"cannot decrypt: {e}".encode())
        RECEIVED.append({"path": self.path, "payload": json.loads(plain)})
        self.answer(201)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1], "p256dh": b64url(PUBLIC), "auth": b64url(AUTH)}), flush=True)
server.serve_forever()
