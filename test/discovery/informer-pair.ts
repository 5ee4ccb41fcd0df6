// Two informers over one FakeApiServer, seen the same way: @kubernetes/client-node's makeInformer
// (the reference) and discovery's own Informer (src/discovery/kube/informer.ts), both watching the
// Services of one namespace with discovery's label selector. Each authenticates with its own bearer
// token, so the fake's request log says who asked what. Used by the conformance tests.
import { CoreV1Api, KubeConfig, makeInformer, type ListWatch, type V1Service, type V1ServiceList } from '@kubernetes/client-node';
import { Informer } from '../../src/discovery/kube/informer.js';
import { KubeApi, LIST_PAGE, type KubeObject } from '../../src/discovery/kube/kube-api.js';
import type { FakeApiServer, RequestRecord } from './fake-apiserver.js';

export const NS = 'plugins';
export const PATH = `/api/v1/namespaces/${NS}/services`;
/** Both watch what discovery watches: Services labelled as plugins. */
export const SELECTOR = 'polku.io/plugin';

export type Verb = 'add' | 'update' | 'delete';
export type Meta = { metadata?: { name?: string | undefined; resourceVersion?: string | undefined } | undefined };

/** One client under test, seen the same way whichever it is. */
export interface Side {
  readonly name: 'client-node' | 'ours';
  /** The bearer token it sends. */
  readonly auth: string;
  /** `add a@101`, in the order reported. */
  readonly events: string[];
  /** Errors reported while not stopped. */
  readonly errors: unknown[];
  stopped: boolean;
  objects(): Meta[];
  latestResourceVersion(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface InformerPair {
  reference: Side;
  ours: Side;
  sides: [Side, Side];
  /** The requests `side` made for Services, from index `from` of the fake's log. */
  requestsOf(side: Side, from?: number): RequestRecord[];
  /** Stops both (nothing reported after) and closes our keep-alive agent. */
  close(): Promise<void>;
}

/** A v1 Service in {@link NS}, labelled as a plugin unless `plugin` is false. */
export function svc(name: string, port: number, plugin = true) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS, labels: plugin ? { app: name, [SELECTOR]: 'emitter' } : { app: name } },
    spec: { type: 'ClusterIP', ports: [{ name: 'grpc', port, protocol: 'TCP' }] },
  };
}

export const key = (o: Meta) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`;
/** The HTTP status an error carries: ours as `code`, client-node's as `statusCode` (or `code`). */
export const statusOf = (err: unknown) => (err as { code?: unknown }).code ?? (err as { statusCode?: unknown }).statusCode;

/**
 * Builds both informers (not started). Nothing restarts on its own unless `restart` is given: it
 * is called with the side after each error, as an owner's backoff would be.
 */
export function informerPair(fake: FakeApiServer, restart?: (side: Side) => void): InformerPair {
  const kc = new KubeConfig();
  // client-node 1.x refuses a plain-http cluster unless told to skip TLS verification.
  kc.loadFromString(fake.kubeconfig({ token: 'client-node' }, { 'insecure-skip-tls-verify': true }));
  const core = kc.makeApiClient(CoreV1Api);
  // ListWatch takes one list call; paging is its caller's (client-go's pager does it): every page
  // through the generated API, with the selector, the first page's version kept.
  const listAll = async (): Promise<V1ServiceList> => {
    const items: V1Service[] = [];
    let first: V1ServiceList | undefined;
    let cont: string | undefined;
    do {
      const page = await core.listNamespacedService({
        namespace: NS,
        labelSelector: SELECTOR,
        limit: LIST_PAGE,
        ...(cont ? { _continue: cont } : {}),
      });
      first ??= page;
      items.push(...page.items);
      cont = page.metadata?._continue;
    } while (cont);
    return { ...first, items };
  };
  // makeInformer builds a ListWatch (not autostarted); its type says only Informer & ObjectCache.
  const informer = makeInformer<V1Service>(kc, PATH, listAll, SELECTOR) as ListWatch<V1Service>;
  const reference: Side = {
    name: 'client-node',
    auth: 'client-node',
    events: [],
    errors: [],
    stopped: false,
    objects: () => [...informer.list()],
    latestResourceVersion: () => informer.latestResourceVersion(),
    start: () => informer.start(),
    stop: () => informer.stop(),
  };

  const api = new KubeApi({ ...fake.cluster(), headers: () => ({ authorization: 'Bearer ours' }) });
  const own = new Informer<KubeObject>({
    api,
    path: PATH,
    query: { labelSelector: SELECTOR },
    list: () => api.list(PATH, { labelSelector: SELECTOR }),
  });
  const ours: Side = {
    name: 'ours',
    auth: 'ours',
    events: [],
    errors: [],
    stopped: false,
    objects: () => [...own.list()],
    latestResourceVersion: () => own.latestResourceVersion(),
    start: () => own.start(),
    stop: () => own.stop(),
  };

  const record = (side: Side, verb: Verb) => (o: Meta) => side.events.push(`${verb} ${key(o)}`);
  // After stop() client-node reports its own abort as an error: that one is not a failure.
  const failed = (side: Side) => (err: unknown) => {
    if (side.stopped) return;
    side.errors.push(err);
    restart?.(side);
  };
  for (const verb of ['add', 'update', 'delete'] as const) {
    informer.on(verb, record(reference, verb));
    own.on(verb, record(ours, verb));
  }
  informer.on('error', failed(reference));
  own.on('error', failed(ours));

  return {
    reference,
    ours,
    sides: [reference, ours],
    requestsOf: (side, from = 0) =>
      fake.requests.slice(from).filter((r) => r.kind === 'services' && r.authorization === `Bearer ${side.auth}`),
    // client-node's stop() does not wait for a list in flight, whose watch may then open: the
    // server's close ends it and, stopped, it does not start again.
    async close() {
      for (const side of [reference, ours]) {
        side.stopped = true;
        await side.stop();
      }
      api.close();
    },
  };
}
