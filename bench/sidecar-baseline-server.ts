/**
 * The ceiling for `bench/sidecar.bench.ts` section 2: a bare fastify route returning the same bytes and
 * headers as a sidecar L1 hit, with no logging, no validation, no metrics.
 * Usage: tsx bench/sidecar-baseline-server.ts PORT VALUE_BYTES
 */
import Fastify from 'fastify';

const port = Number(process.argv[2]);
const value = Buffer.alloc(Number(process.argv[3] ?? 256), 'v');

const app = Fastify({ logger: false });
app.get('/v1/cache/*', (_request, reply) => {
  reply.header('content-type', 'text/plain').header('x-cache', 'L1').send(value);
});
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
