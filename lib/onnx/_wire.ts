// Protobuf wire-format reading: just enough of the encoding (varints,
// fixed32/64, length-delimited) to walk ONNX messages without a schema
// compiler. Every bounds problem is reported as a WireError so the message
// decoder can turn it into one typed error for callers. At the end, the few
// writers lib/onnx/levels.ts splices graphs with.

import { Buffer } from "node:buffer";

/** Raised for bytes that are not valid protobuf wire format. */
export class WireError extends Error {}

/** Protobuf wire types used by proto3 messages (groups are rejected). */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A cursor over one message: [pos, end) of a shared buffer, no copies. */
export class WireReader {
  pos: number;
  readonly end: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a tag and returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.uvarint();
    const field = Math.floor(t / 8);
    const wire = t % 8;
    if (field === 0) throw new WireError(`field number 0 at byte ${this.pos}`);
    if (wire !== WIRE_VARINT && wire !== WIRE_FIXED64 && wire !== WIRE_LEN && wire !== WIRE_FIXED32) {
      throw new WireError(`unsupported wire type ${wire} at byte ${this.pos}`);
    }
    return [field, wire];
  }

  #byte(): number {
    if (this.pos >= this.end) throw new WireError("truncated varint");
    return this.#buf[this.pos++];
  }

  /**
   * A varint read as a signed 64-bit integer (ONNX int64 fields hold -1 and
   * INT64_MAX as sentinels). Values beyond 2^53 lose precision, which is fine
   * for the clamping they are used for.
   */
  varint(): number {
    let lo = 0;
    let b = 0;
    for (let i = 0; i < 4; i++) {
      b = this.#byte();
      lo |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return lo >>> 0;
    }
    b = this.#byte();
    lo |= (b & 0x7f) << 28;
    let hi = (b & 0x7f) >> 4;
    if (b < 0x80) return hi * TWO_32 + (lo >>> 0);
    for (let i = 0; i < 5; i++) {
      b = this.#byte();
      hi |= (b & 0x7f) << (7 * i + 3);
      if (b < 0x80) return (hi | 0) * TWO_32 + (lo >>> 0);
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** A varint that must be a non-negative safe integer (lengths, tags). */
  uvarint(): number {
    const v = this.varint();
    if (v < 0 || v > Number.MAX_SAFE_INTEGER) throw new WireError(`bad length or tag ${v}`);
    return v;
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw new WireError("truncated fixed32");
    const v = this.#view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  float64(): number {
    if (this.pos + 8 > this.end) throw new WireError("truncated fixed64");
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Length-delimited payload as a view into the original buffer. */
  bytes(): Uint8Array {
    const [start, end] = this.#span();
    return this.#buf.subarray(start, end);
  }

  string(): string {
    try {
      return utf8.decode(this.bytes());
    } catch (e) {
      if (e instanceof WireError) throw e;
      throw new WireError("string field is not valid UTF-8");
    }
  }

  /** A reader over an embedded message; this reader skips past it. */
  message(): WireReader {
    const [start, end] = this.#span();
    return new WireReader(this.#buf, start, end);
  }

  #span(): [number, number] {
    const len = this.uvarint();
    const start = this.pos;
    if (start + len > this.end) throw new WireError(`length ${len} runs past the end of its message`);
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.#advance(8);
        return;
      case WIRE_FIXED32:
        this.#advance(4);
        return;
      case WIRE_LEN:
        this.#span();
        return;
      default:
        throw new WireError(`cannot skip wire type ${wire}`);
    }
  }

  #advance(n: number): void {
    if (this.pos + n > this.end) throw new WireError("truncated fixed-width field");
    this.pos += n;
  }

  /** Repeated int64/int32 that may be packed (LEN) or one-per-tag (VARINT). */
  pushVarints(wire: number, out: number[]): void {
    if (wire === WIRE_LEN) {
      const sub = this.message();
      while (!sub.done) out.push(sub.varint());
    } else if (wire === WIRE_VARINT) {
      out.push(this.varint());
    } else {
      throw new WireError(`wire type ${wire} for a repeated varint field`);
    }
  }

  /** Repeated float that may be packed (LEN) or one-per-tag (FIXED32). */
  pushFloats(wire: number, out: number[]): void {
    if (wire === WIRE_LEN) {
      const sub = this.message();
      while (!sub.done) out.push(sub.float32());
    } else if (wire === WIRE_FIXED32) {
      out.push(this.float32());
    } else {
      throw new WireError(`wire type ${wire} for a repeated float field`);
    }
  }

  /** Repeated double that may be packed (LEN) or one-per-tag (FIXED64). */
  pushDoubles(wire: number, out: number[]): void {
    if (wire === WIRE_LEN) {
      const sub = this.message();
      while (!sub.done) out.push(sub.float64());
    } else if (wire === WIRE_FIXED64) {
      out.push(this.float64());
    } else {
      throw new WireError(`wire type ${wire} for a repeated double field`);
    }
  }
}

// Writing: the few encodings lib/onnx/levels.ts needs to splice ONNX graphs (fields copied as raw bytes, a handful of
// small messages built new). Each helper returns one encoded field.

const utf8Encoder = new TextEncoder();

function varintBytes(v: number): number[] {
  if (!Number.isSafeInteger(v) || v < 0) throw new WireError(`cannot encode ${v} as an unsigned varint`);
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Concatenates encoded fields (node:buffer's concat: a Uint8Array). */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** A varint field (non-negative values only). */
export function varintField(field: number, v: number): Uint8Array {
  return Uint8Array.from([...varintBytes(field * 8 + WIRE_VARINT), ...varintBytes(v)]);
}

/** A length-delimited field: bytes, a string or an embedded message (given as its encoded fields). */
export function lenField(field: number, payload: Uint8Array | string | Uint8Array[]): Uint8Array {
  const body = typeof payload === "string"
    ? utf8Encoder.encode(payload)
    : Array.isArray(payload)
    ? concatBytes(payload)
    : payload;
  return concatBytes([Uint8Array.from([...varintBytes(field * 8 + WIRE_LEN), ...varintBytes(body.length)]), body]);
}

/** One field of a message as it lies in the buffer: its number and its bytes, tag included. */
export interface RawField {
  field: number;
  raw: Uint8Array;
}

/** The fields of a message in order, each as raw bytes that can be copied into a new message unchanged. */
export function rawFields(buf: Uint8Array, start = 0, end = buf.length): RawField[] {
  const r = new WireReader(buf, start, end);
  const out: RawField[] = [];
  while (!r.done) {
    const at = r.pos;
    const [field, wire] = r.tag();
    r.skip(wire);
    out.push({ field, raw: buf.subarray(at, r.pos) });
  }
  return out;
}

/** The payload of a raw length-delimited field (its bytes after tag and length). */
export function payloadOf(f: RawField): Uint8Array {
  const r = new WireReader(f.raw);
  r.tag();
  return r.bytes();
}
