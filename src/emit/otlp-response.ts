import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

/** Answers an OTLP receiver sends back: ExportLogsServiceResponse and google.rpc.Status (with RetryInfo). */

const LEN = WireType.LengthDelimited;

/** ExportLogsServiceResponse.partial_success, as the receiver filled it. */
export interface PartialSuccess {
  readonly rejected: number;
  readonly message: string;
}

/** Decodes ExportLogsServiceResponse; throws on bytes that are not one. */
export function decodeLogsResponse(bytes: Uint8Array): PartialSuccess {
  let rejected = 0;
  let message = '';
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === LEN) {
      const p = new BinaryReader(r.bytes());
      while (p.pos < p.len) {
        const [f, t] = p.tag();
        if (f === 1 && t === WireType.Varint) rejected = Number(p.int64());
        else if (f === 2 && t === LEN) message = p.string();
        else p.skip(t, f);
      }
    } else r.skip(type, field);
  }
  return { rejected, message };
}

/** ExportLogsServiceResponse in OTLP/JSON (`{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"…"}}`). */
export function decodeLogsResponseJson(text: string): PartialSuccess {
  const parsed = JSON.parse(text) as { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } } | null;
  const p = parsed?.partialSuccess;
  return { rejected: Number(p?.rejectedLogRecords ?? 0) || 0, message: typeof p?.errorMessage === 'string' ? p.errorMessage : '' };
}

/**
 * From `google.rpc.Status` bytes (the gRPC `grpc-status-details-bin` trailer, or an OTLP/HTTP error
 * body): its message and the delay of a `google.rpc.RetryInfo` detail, if any. Unreadable bytes
 * give `{}`.
 */
export function decodeRpcStatus(bytes: Uint8Array): { message?: string; retryDelayMs?: number } {
  const out: { message?: string; retryDelayMs?: number } = {};
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [field, type] = r.tag();
      if (field === 2 && type === LEN) out.message = r.string();
      else if (field === 3 && type === LEN) {
        const any = new BinaryReader(r.bytes());
        let typeUrl = '';
        let value: Uint8Array | undefined;
        while (any.pos < any.len) {
          const [f, t] = any.tag();
          if (f === 1 && t === LEN) typeUrl = any.string();
          else if (f === 2 && t === LEN) value = any.bytes();
          else any.skip(t, f);
        }
        if (typeUrl.endsWith('/google.rpc.RetryInfo') && value) {
          const delay = readRetryDelay(value);
          if (delay !== undefined) out.retryDelayMs = delay;
        }
      } else r.skip(type, field);
    }
  } catch {
    return {};
  }
  return out;
}

/** RetryInfo{retry_delay: Duration{seconds, nanos}} → milliseconds. */
function readRetryDelay(bytes: Uint8Array): number | undefined {
  const r = new BinaryReader(bytes);
  let ms: number | undefined;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === LEN) {
      const d = new BinaryReader(r.bytes());
      let seconds = 0;
      let nanos = 0;
      while (d.pos < d.len) {
        const [f, t] = d.tag();
        if (f === 1 && t === WireType.Varint) seconds = Number(d.int64());
        else if (f === 2 && t === WireType.Varint) nanos = d.int32();
        else d.skip(t, f);
      }
      ms = Math.max(0, Math.round(seconds * 1000 + nanos / 1e6));
    } else r.skip(type, field);
  }
  return ms;
}
