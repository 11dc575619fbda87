/**
 * The controller: informer events → CacheCluster keys → work queue → workers calling `reconcile`.
 * Events on owned objects enqueue their owning CacheCluster. Every key is re-queued periodically
 * (`resyncMs`), so live settings are verified even when nothing in the API server changed.
 */
import type { KubeObject } from '../k8s/kube-client.js';
import { WorkQueue } from './work-queue.js';

export type ReconcileResult = { kind: 'done' } | { kind: 'requeueAfter'; ms: number };
export const done: ReconcileResult = { kind: 'done' };
export const requeueAfter = (ms: number): ReconcileResult => ({ kind: 'requeueAfter', ms });

/** How a reconcile error is treated: conflicts are retried at once, everything else backs off. */
export interface ControllerHooks {
  reconcile(key: string): Promise<ReconcileResult>;
  /**
   * Whether `key` (a CacheCluster) still needs its first pass (its StatefulSet does not exist): an event on it
   * then puts it in the queue's front lane, ahead of the follow-up passes of CacheClusters that have one.
   */
  needsFirstPass?(key: string): boolean;
  isConflict(err: unknown): boolean;
  onResult?(key: string, result: 'success' | 'requeue' | 'error' | 'conflict', seconds: number, err?: unknown): void;
  onQueueDepth?(depth: number): void;
}

export interface ControllerOptions {
  workers: number;
  resyncMs: number;
  ownerKind: string;
  ownerApiVersion: string;
  /**
   * For objects without an owner reference to a CacheCluster (the Redis pods, owned by the StatefulSet): the
   * label that names their CacheCluster in the same namespace.
   */
  ownerLabel?: string;
}

export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class Controller {
  readonly queue = new WorkQueue();
  private running: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();

  constructor(
    private readonly hooks: ControllerHooks,
    private readonly opts: ControllerOptions,
  ) {}

  /** Informer callback: maps any watched object to the CacheCluster key it concerns. */
  handleEvent(kind: string, obj: KubeObject, type: 'add' | 'update' | 'delete'): void {
    const ns = obj.metadata?.namespace;
    if (!ns) return;
    if (kind === this.opts.ownerKind) {
      const key = objectKey(ns, obj.metadata!.name!);
      if (type === 'delete') this.known.delete(key);
      else this.known.add(key);
      this.queue.add(key, { front: type !== 'delete' && (this.hooks.needsFirstPass?.(key) ?? false) });
    } else {
      const owner = obj.metadata?.ownerReferences?.find(
        (r) => r.controller && r.kind === this.opts.ownerKind && r.apiVersion === this.opts.ownerApiVersion,
      );
      const byLabel = this.opts.ownerLabel ? obj.metadata?.labels?.[this.opts.ownerLabel] : undefined;
      if (owner) this.queue.add(objectKey(ns, owner.name));
      else if (byLabel) this.queue.add(objectKey(ns, byLabel));
    }
    this.hooks.onQueueDepth?.(this.queue.depth);
  }

  /** New CacheClusters wait for their first pass (the queue's front lane is not empty). */
  firstPassesWaiting(): boolean {
    return this.queue.frontDepth > 0;
  }

  start(): void {
    for (let i = 0; i < this.opts.workers; i++) this.running.push(this.worker());
    const resync = () => {
      for (const key of this.known) this.queue.add(key);
      this.resyncTimer = setTimeout(resync, this.opts.resyncMs);
      this.resyncTimer.unref();
    };
    this.resyncTimer = setTimeout(resync, this.opts.resyncMs);
    this.resyncTimer.unref();
  }

  /** Stops taking work; resolves when in-flight reconciles have finished. */
  async stop(): Promise<void> {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.queue.shutDown();
    await Promise.all(this.running);
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const start = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
      let retryNow = false;
      try {
        const result = await this.hooks.reconcile(key);
        this.queue.forget(key);
        if (result.kind === 'requeueAfter') {
          this.queue.addAfter(key, result.ms);
          this.hooks.onResult?.(key, 'requeue', seconds());
        } else {
          this.hooks.onResult?.(key, 'success', seconds());
        }
      } catch (err) {
        if (this.hooks.isConflict(err)) {
          this.hooks.onResult?.(key, 'conflict', seconds(), err);
          retryNow = true;
        } else {
          this.hooks.onResult?.(key, 'error', seconds(), err);
          this.queue.addRateLimited(key);
        }
      } finally {
        this.queue.done(key);
        if (retryNow) this.queue.add(key);
        this.hooks.onQueueDepth?.(this.queue.depth);
      }
    }
  }
}
