// Discovery's own API client on the wire, against a bare node:http server scripted per request:
// a list follows `continue` tokens across pages and keeps the first page's resourceVersion; a
// refused request carries the Status's code and message; the informer turns an ERROR event that
// is not 410 into an error for its owner, and refuses a list without a resourceVersion instead of
// listing in a loop.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { ClusterAccess } from '../../src/discovery/kube/cluster-access.js';
import { Informer } from '../../src/discovery/kube/informer.js';
import { KubeApi, KubeApiError, LIST_PAGE, type KubeObject } from '../../src/discovery/kube/kube-api.js';
import { until } from '../helpers/gateway-harness.js';

describe('the Kubernetes API client', () => {
  let server: Server;
  let access: ClusterAccess;
  let handler: (url: URL, res: ServerResponse) => void = () => undefined;
  const seen: URL[] = [];

  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push(url);
      handler(url, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    access = { server: `http://127.0.0.1:${port}`, source: 'test', user: '', tls: { rejectUnauthorized: true }, headers: () => ({}) };
  });
  after(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });

  const pod = (name: string, rv: string) => ({ metadata: { name, namespace: 'n', resourceVersion: rv } });
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  test('a list follows continue tokens; every page is asked with the limit, the first version is kept', async () => {
    seen.length = 0;
    handler = (url, res) => {
      const cont = url.searchParams.get('continue');
      if (!cont) json(res, 200, { metadata: { resourceVersion: '7', continue: 'page-2' }, items: [pod('a', '5'), pod('b', '6')] });
      else json(res, 200, { metadata: { resourceVersion: '9' }, items: [pod('c', '7')] });
    };
    const api = new KubeApi(access);
    try {
      const list = await api.list<KubeObject>('/api/v1/pods', { fieldSelector: 'spec.nodeName=n1' });
      assert.deepEqual(
        list.items.map((p) => p.metadata?.name),
        ['a', 'b', 'c'],
      );
      assert.equal(list.metadata?.resourceVersion, '7');
      assert.deepEqual(
        seen.map((u) => [u.pathname, u.searchParams.get('limit'), u.searchParams.get('continue'), u.searchParams.get('fieldSelector')]),
        [
          ['/api/v1/pods', String(LIST_PAGE), null, 'spec.nodeName=n1'],
          ['/api/v1/pods', String(LIST_PAGE), 'page-2', 'spec.nodeName=n1'],
        ],
      );
    } finally {
      api.close();
    }
  });

  test('a refused request is a KubeApiError with the status code, reason and the Status message', async () => {
    handler = (_url, res) =>
      json(res, 403, { kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods is forbidden: no RBAC' });
    const api = new KubeApi(access);
    try {
      await assert.rejects(api.list('/api/v1/pods', {}), (err: unknown) => {
        assert.ok(err instanceof KubeApiError);
        assert.deepEqual([err.code, err.statusCode, err.reason], [403, 403, 'Forbidden']);
        assert.match(err.message, /\/api\/v1\/pods: HTTP 403 pods is forbidden: no RBAC/);
        return true;
      });
    } finally {
      api.close();
    }
  });

  test('an ERROR event other than 410 stops the informer with that error; a list without a version is an error, not a loop', async () => {
    handler = (url, res) => {
      if (url.searchParams.get('watch') !== 'true') return json(res, 200, { metadata: { resourceVersion: '10' }, items: [pod('a', '9')] });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: pod('b', '11') })}\n`);
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd is sad' } })}\n`,
      );
    };
    const api = new KubeApi(access);
    const errors: unknown[] = [];
    const added: string[] = [];
    const informer = new Informer<KubeObject>({
      api,
      path: '/api/v1/pods',
      query: {},
      list: () => api.list<KubeObject>('/api/v1/pods', {}),
    });
    informer.on('add', (p) => added.push(p.metadata?.name ?? ''));
    informer.on('error', (err) => errors.push(err));
    try {
      await informer.start();
      await until(() => errors.length === 1, 'the error reported');
      assert.deepEqual(added, ['a', 'b']);
      assert.equal(informer.latestResourceVersion(), '11', 'the version of the last event: a restart resumes from it');
      const err = errors[0] as KubeApiError;
      assert.deepEqual([err.code, err.reason], [500, 'InternalError']);
      assert.match(err.message, /etcd is sad/);

      handler = (_url, res) => json(res, 200, { metadata: {}, items: [] });
      const fresh = new Informer<KubeObject>({
        api,
        path: '/api/v1/pods',
        query: {},
        list: () => api.list<KubeObject>('/api/v1/pods', {}),
      });
      const freshErrors: unknown[] = [];
      fresh.on('error', (e) => freshErrors.push(e));
      const asked = seen.length;
      await fresh.start();
      assert.equal(freshErrors.length, 1);
      assert.match(String((freshErrors[0] as Error).message), /no metadata\.resourceVersion/);
      assert.equal(seen.length, asked + 1, 'one list, no watch, no second list');
    } finally {
      await informer.stop();
      api.close();
    }
  });
});
