import { EnvProblem, type EnvParser } from '../config/env-parsers.js';
import { AhtiEmitter, type AhtiEmitterOptions } from './ahti.js';
import type { Emitter } from './emitter.js';
import { checkOtlpEndpoint, OtlpEmitter, type OtlpEmitterOptions, type OtlpProtocol } from './otlp.js';

/** The emitters `polku serve` adds to its pipeline from POLKU_EMIT_OTLP_* and POLKU_EMIT_AHTI_*. */
export interface EnvEmitterSettings {
  otlp?: OtlpEmitterOptions;
  ahti?: AhtiEmitterOptions;
}

/** The raw values of the variables, as env-table read them. */
export interface EnvEmitterValues {
  otlpEndpoint: string | undefined;
  otlpProtocol: OtlpProtocol;
  otlpCompression: 'gzip' | 'none';
  otlpHeaders: Readonly<Record<string, string>>;
  ahtiEndpoint: string | undefined;
}

/** `key=value,key=value` (OTEL_EXPORTER_OTLP_HEADERS' form); values are URL-decoded. */
export const headerList: EnvParser<Readonly<Record<string, string>>> = {
  parse(raw) {
    const out: Record<string, string> = {};
    for (const part of raw.split(',')) {
      const entry = part.trim();
      if (entry === '') continue;
      const eq = entry.indexOf('=');
      if (eq <= 0) return new EnvProblem(`"${entry}" is not key=value`);
      let value: string;
      try {
        value = decodeURIComponent(entry.slice(eq + 1).trim());
      } catch {
        return new EnvProblem(`the value of "${entry.slice(0, eq).trim()}" is not URL-encoded text`);
      }
      out[entry.slice(0, eq).trim().toLowerCase()] = value;
    }
    return out;
  },
  show: (value) =>
    Object.keys(value).length === 0
      ? '(none)'
      : Object.entries(value)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
};

/** The emitters' options, or problems naming the variable that is wrong. */
export function envEmitterSettings(v: EnvEmitterValues, problems: string[]): EnvEmitterSettings {
  const out: EnvEmitterSettings = {};
  if (v.otlpEndpoint !== undefined) {
    const problem = checkOtlpEndpoint(v.otlpProtocol, v.otlpEndpoint);
    if (problem) problems.push(`POLKU_EMIT_OTLP_ENDPOINT ${problem} (POLKU_EMIT_OTLP_PROTOCOL=${v.otlpProtocol})`);
    else {
      out.otlp = {
        protocol: v.otlpProtocol,
        endpoint: v.otlpEndpoint,
        compression: v.otlpCompression,
        headers: { ...v.otlpHeaders },
      };
    }
  } else if (Object.keys(v.otlpHeaders).length > 0) {
    problems.push('POLKU_EMIT_OTLP_HEADERS is set without POLKU_EMIT_OTLP_ENDPOINT');
  }
  if (v.ahtiEndpoint !== undefined) {
    if (!/^(https?:\/\/)?[^/\s]+:\d{1,5}$/.test(v.ahtiEndpoint)) {
      problems.push(`POLKU_EMIT_AHTI_ENDPOINT "${v.ahtiEndpoint}" is not host:port, http://host:port or https://host:port`);
    } else out.ahti = { endpoint: v.ahtiEndpoint };
  }
  return out;
}

/** The emitters the settings ask for (named `otlp` and `ahti`). */
export function envEmitters(settings: EnvEmitterSettings): Emitter[] {
  const out: Emitter[] = [];
  if (settings.otlp) out.push(new OtlpEmitter(settings.otlp));
  if (settings.ahti) out.push(new AhtiEmitter(settings.ahti));
  return out;
}
