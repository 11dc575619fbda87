/**
 * Metrics of the RESP front, on the sidecar's registry: commands by name and result, connections, bytes,
 * protocol errors. Counts are plain numbers handed to the registry at scrape time (as the HTTP request
 * metrics are): prom-client's per-call label hashing would cost more than an L1 hit. Reads and writes are
 * also recorded in `ripplecache_sidecar_requests_total` (by the commands), so hit ratios cover both fronts.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface RespMetrics {
  /** One command answered: `command` is a known command's lower-case name or `unknown`; `result` is `ok` or the error prefix. */
  command(command: string, result: string): void;
  connectionOpened(): void;
  connectionClosed(): void;
  bytesReceived(n: number): void;
  bytesSent(n: number): void;
  /** A connection closed after input the parser refused (`malformed` or `too-large`), or a stalled client (`slow-client`). */
  closedOnError(reason: 'malformed' | 'too-large' | 'slow-client'): void;
}

export function createRespMetrics(registry: Registry, knownCommands: Iterable<string>): RespMetrics {
  const registers = [registry];
  const counts = new Map<string, { labels: { command: string; result: string }; n: number }>();
  for (const c of knownCommands) counts.set(`${c}\u0000ok`, { labels: { command: c, result: 'ok' }, n: 0 });
  new Counter({
    name: 'ripplecache_sidecar_resp_commands_total',
    help: 'Commands answered by the RESP front, by command (lower case; unknown for any other) and result (ok, or the error prefix such as ERR, INVALID_KEY, REDIS_UNAVAILABLE)',
    labelNames: ['command', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const cell of counts.values()) this.inc(cell.labels, cell.n);
    },
  });
  let open = 0;
  let opened = 0;
  let received = 0;
  let sent = 0;
  new Gauge({
    name: 'ripplecache_sidecar_resp_connections',
    help: 'Open connections to the RESP front',
    registers,
    collect() {
      this.set(open);
    },
  });
  new Counter({
    name: 'ripplecache_sidecar_resp_connections_total',
    help: 'Connections accepted by the RESP front',
    registers,
    collect() {
      this.reset();
      this.inc(opened);
    },
  });
  new Counter({
    name: 'ripplecache_sidecar_resp_received_bytes_total',
    help: 'Bytes received by the RESP front',
    registers,
    collect() {
      this.reset();
      this.inc(received);
    },
  });
  new Counter({
    name: 'ripplecache_sidecar_resp_sent_bytes_total',
    help: 'Bytes sent by the RESP front',
    registers,
    collect() {
      this.reset();
      this.inc(sent);
    },
  });
  const closedOnError = new Counter({
    name: 'ripplecache_sidecar_resp_connections_closed_on_error_total',
    help: 'RESP connections the sidecar closed: malformed input, a bulk string over --max-value-bytes (too-large), or a client that stalled mid-command or stopped reading its replies (slow-client)',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of ['malformed', 'too-large', 'slow-client'] as const) closedOnError.inc({ reason }, 0);

  return {
    command(command, result) {
      const id = `${command}\u0000${result}`;
      const cell = counts.get(id);
      if (cell !== undefined) cell.n++;
      else counts.set(id, { labels: { command, result }, n: 1 });
    },
    connectionOpened() {
      open++;
      opened++;
    },
    connectionClosed() {
      open--;
    },
    bytesReceived(n) {
      received += n;
    },
    bytesSent(n) {
      sent += n;
    },
    closedOnError(reason) {
      closedOnError.inc({ reason });
    },
  };
}
