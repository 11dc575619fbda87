import type { L1Policy } from '../config-defaults.js';
import { LfuStore } from './lfu-store.js';
import type { L1Store, L1StoreOptions } from './l1-store.js';
import { FifoStore, LruStore } from './list-store.js';
import { TtlStore } from './ttl-store.js';

/** Creates the L1 store of a policy. */
export function createL1Store<V>(policy: L1Policy, options: L1StoreOptions): L1Store<V> {
  switch (policy) {
    case 'lru':
      return new LruStore<V>(options);
    case 'lfu':
      return new LfuStore<V>(options);
    case 'fifo':
      return new FifoStore<V>(options);
    case 'ttl':
      return new TtlStore<V>(options);
  }
}
