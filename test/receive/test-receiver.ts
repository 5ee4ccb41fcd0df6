import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { refusalOf } from '../../src/errors.js';
import { Event } from '../../src/gen/polku/v1/event.js';
import type { Ack } from '../../src/gen/polku/v1/gateway.js';
import type { GrpcServiceBinding, Receiver, ReceiverContext } from '../../src/receive/receiver.js';

export const ECHO_PROTO = fileURLToPath(new URL('../fixtures/protos/echo.proto', import.meta.url));

let echoSet: Uint8Array | undefined;

/**
 * echo.proto's FileDescriptorSet, built by buf as a user would build their receiver's
 * (`buf build --as-file-descriptor-set`): its proto is not in POLKU's proto/, so server reflection
 * needs it from the binding.
 */
export function echoDescriptorSet(): Uint8Array {
  const buf = fileURLToPath(new URL('../../node_modules/.bin/buf', import.meta.url));
  echoSet ??= execFileSync(buf, ['build', dirname(ECHO_PROTO), '--path', ECHO_PROTO, '--as-file-descriptor-set', '-o', '-']);
  return echoSet;
}

interface SayRequest {
  source: string;
  words: string[];
}

interface SayReply {
  event_ids: string[];
  refusals: string[];
}

/**
 * A receiver written the way a new protocol would be: one file, its own proto, one `submit` per
 * request, and the catalogue's table (`refusalOf`) to map the Ack to a gRPC status. Each word of
 * `polku.test.echo.Echo/Say` becomes an event of type `echo.word` with the word as payload.
 * It records its lifecycle calls so a test can check the gateway drives them in order.
 */
export class EchoReceiver implements Receiver {
  readonly name = 'test-echo';
  readonly lifecycle: string[] = [];

  grpcServices(ctx: ReceiverContext): readonly GrpcServiceBinding[] {
    this.lifecycle.push('grpcServices');
    const pkg = grpc.loadPackageDefinition(loadSync(ECHO_PROTO, { keepCase: true })) as any;
    const definition = (pkg.polku.test.echo.Echo as grpc.ServiceClientConstructor).service;
    const implementation = {
      Say: (call: grpc.ServerUnaryCall<SayRequest, SayReply>, cb: grpc.sendUnaryData<SayReply>) => this.say(ctx, call.request, cb),
    };
    return [
      {
        definition,
        implementation,
        protoFiles: [ECHO_PROTO],
        descriptorSet: echoDescriptorSet(),
        healthServiceName: 'polku.test.echo.Echo',
      },
    ];
  }

  start(): Promise<void> {
    this.lifecycle.push('start');
    return Promise.resolve();
  }

  stopIntake(): void {
    this.lifecycle.push('stopIntake');
  }

  close(): Promise<void> {
    this.lifecycle.push('close');
    return Promise.resolve();
  }

  private say(ctx: ReceiverContext, request: SayRequest, cb: grpc.sendUnaryData<SayReply>): void {
    const events = request.words.map((word) => Event.fromPartial({ eventType: 'echo.word', payload: Buffer.from(word) }));
    const answer = (ack: Ack): void => {
      const refusal = refusalOf(ack);
      if (refusal) cb({ code: grpc.status[refusal.grpc], details: ack.errors.map((e) => `${e.code}: ${e.message}`).join('; ') });
      else cb(null, { event_ids: ack.eventIds, refusals: ack.errors.map((e) => `${e.code}: ${e.message}`) });
    };
    const ack = ctx.hub.submit({ source: request.source, cluster: '', unary: true, payload: { kind: 'events', events } });
    if (ack instanceof Promise) ack.then(answer, (err: unknown) => cb({ code: grpc.status.INTERNAL, details: String(err) }));
    else answer(ack);
  }
}

/** A client for the Echo service, from the proto file alone. */
export function echoClient(port: number): grpc.Client & Record<string, any> {
  const pkg = grpc.loadPackageDefinition(loadSync(ECHO_PROTO, { keepCase: true, defaults: true })) as any;
  return new pkg.polku.test.echo.Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}
