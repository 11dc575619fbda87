/** The `<program>_build_info` gauge each program (operator, sidecar, bridge) exports. */
import { Gauge, type Registry } from 'prom-client';

/** Registers `name` (always 1) with labels `version` (default `unknown`) and `node_version`. */
export function registerBuildInfo(registry: Registry, name: string, version: string | undefined): void {
  new Gauge({
    name,
    help: 'Always 1; the labels say which ripplecache version runs on which Node.js',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  }).set({ version: version ?? 'unknown', node_version: process.versions.node }, 1);
}
