"""SPDY/3.1 framing, the multiplexing under ``kubectl port-forward``.

Mirrors the frame layer of ``github.com/moby/spdystream`` (its ``spdy`` package, the
framer of the SPDY/3 draft: https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3-1/)
that ``k8s.io/apimachinery/pkg/util/httpstream/spdy`` runs port-forward on. Only what a
server needs: control frames (``SYN_STREAM``, ``SYN_REPLY``, ``RST_STREAM``, ``SETTINGS``,
``PING``, ``GOAWAY``, ``WINDOW_UPDATE``) and data frames, big-endian, with the ``FIN`` flag;
header blocks (a count, then length-prefixed names and values, names lower-case) compressed
with zlib (Python's :mod:`zlib`) using the draft's header dictionary, one compression context
per direction for the whole connection, each block ended with a sync flush.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
#: RST_STREAM status ``CANCEL``
CANCEL = 5

#: the SPDY/3 header dictionary (the draft's section 2.6.10.1; spdystream's
#: ``headerDictionary``), which primes zlib for header blocks
DICTIONARY = bytes.fromhex(
    "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c657465"
    "000000057472616365000000066163636570740000000e6163636570742d636861727365740000000f616363"
    "6570742d656e636f64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d7261"
    "6e6765730000000361676500000005616c6c6f770000000d617574686f72697a6174696f6e0000000d636163"
    "68652d636f6e74726f6c0000000a636f6e6e656374696f6e0000000c636f6e74656e742d6261736500000010"
    "636f6e74656e742d656e636f64696e6700000010636f6e74656e742d6c616e67756167650000000e636f6e74"
    "656e742d6c656e67746800000010636f6e74656e742d6c6f636174696f6e0000000b636f6e74656e742d6d64"
    "350000000d636f6e74656e742d72616e67650000000c636f6e74656e742d7479706500000004646174650000"
    "0004657461670000000665787065637400000007657870697265730000000466726f6d00000004686f737400"
    "00000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d69662d6e6f6e652d"
    "6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e63650000000d"
    "6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000"
    "06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f"
    "72697a6174696f6e0000000572616e676500000007726566657265720000000b72657472792d616674657200"
    "00000673657276657200000002746500000007747261696c6572000000117472616e736665722d656e636f64"
    "696e6700000007757067726164650000000a757365722d6167656e7400000004766172790000000376696100"
    "0000077761726e696e67000000107777772d61757468656e746963617465000000066d6574686f6400000003"
    "6765740000000673746174757300000006323030204f4b0000000776657273696f6e00000008485454502f31"
    "2e310000000375726c000000067075626c69630000000a7365742d636f6f6b69650000000a6b6565702d616c"
    "697665000000066f726967696e31303031303132303132303232303532303633303033303233303333303433"
    "3035333036333037343032343035343036343037343038343039343130343131343132343133343134343135"
    "343136343137353032353034353035323033204e6f6e2d417574686f726974617469766520496e666f726d61"
    "74696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c793430302042"
    "6164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e"
    "6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d70"
    "6c656d656e746564353033205365727669636520556e617661696c61626c654a616e20466562204d61722041"
    "7072204d6179204a756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030"
    "204d6f6e2c205475652c205765642c205468752c204672692c205361742c2053756e2c20474d546368756e6b"
    "65642c746578742f68746d6c2c696d6167652f706e672c696d6167652f6a70672c696d6167652f6769662c61"
    "70706c69636174696f6e2f786d6c2c6170706c69636174696f6e2f7868746d6c2b786d6c2c746578742f706c"
    "61696e2c746578742f6a6176617363726970742c7075626c6963707269766174656d61782d6167653d677a69"
    "702c6465666c6174652c73646368636861727365743d7574662d38636861727365743d69736f2d383835392d"
    "312c7574662d2c2a2c656e713d302e")


@dataclass
class Frame:
    """One frame: ``control`` with its ``type``, or data for ``stream``."""

    control: bool
    type: int
    flags: int
    stream: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    #: PING's id, RST_STREAM's or GOAWAY's status, WINDOW_UPDATE's delta
    value: int = 0


class Framer:
    """Reads and writes the frames of one connection (server side)."""

    def __init__(self) -> None:
        self.buffer = b""
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        """Take bytes from the transport; return the frames now complete."""
        self.buffer += data
        frames: list[Frame] = []
        while len(self.buffer) >= 8:
            length = int.from_bytes(self.buffer[5:8], "big")
            if len(self.buffer) < 8 + length:
                break
            head, payload = self.buffer[:8], self.buffer[8:8 + length]
            self.buffer = self.buffer[8 + length:]
            frames.append(self._parse(head, payload))
        return frames

    def _parse(self, head: bytes, payload: bytes) -> Frame:
        first, flags = int.from_bytes(head[0:4], "big"), head[4]
        if not first & 0x80000000:
            return Frame(False, 0, flags, first & 0x7FFFFFFF, data=payload)
        ftype = first & 0xFFFF
        frame = Frame(True, ftype, flags)
        if ftype == SYN_STREAM:
            frame.stream = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            frame.headers = self._headers(payload[10:])
        elif ftype in (SYN_REPLY, HEADERS):
            frame.stream = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            frame.headers = self._headers(payload[4:])
        elif ftype in (RST_STREAM, WINDOW_UPDATE):
            frame.stream = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            frame.value = int.from_bytes(payload[4:8], "big")
        elif ftype == PING:
            frame.value = int.from_bytes(payload[0:4], "big")
        elif ftype == GOAWAY:
            frame.stream = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
            frame.value = int.from_bytes(payload[4:8], "big")
        return frame

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count, at = struct.unpack(">I", raw[:4])[0], 4
        out: dict[str, str] = {}
        for _ in range(count):
            n = struct.unpack(">I", raw[at:at + 4])[0]
            name = raw[at + 4:at + 4 + n].decode()
            at += 4 + n
            v = struct.unpack(">I", raw[at:at + 4])[0]
            out[name] = raw[at + 4:at + 4 + v].decode()
            at += 4 + v
        return out

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in sorted(headers.items()):
            n, v = name.lower().encode(), value.encode()
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(ftype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, flags << 24 | len(payload)) + payload

    def syn_reply(self, stream: int, headers: dict[str, str] | None = None) -> bytes:
        return self._control(SYN_REPLY, 0,
                             struct.pack(">I", stream) + self._block(headers or {}))

    def rst_stream(self, stream: int, status: int = CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, 0))

    @staticmethod
    def data(stream: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream, (FLAG_FIN if fin else 0) << 24 | len(data)) + data
