import type { L1Policy } from '../config-defaults.js';
import { LfuStore } from './lfu-store.js';
import type { L1Store, L1StoreOptions } from './l1-store.js';
import { ClockStore } from './clock-store.js';
import { FifoStore } from './list-store.js';
import { TinyLfuStore } from './tinylfu-store.js';
import { TtlStore } from './ttl-store.js';

/** Creates the L1 store of a policy. */
export function createL1Store<V>(policy: L1Policy, options: L1StoreOptions): L1Store<V> {
  switch (policy) {
    case 'lru':
      return new ClockStore<V>(options);
    case 'lfu':
      return new LfuStore<V>(options);
    case 'fifo':
      return new FifoStore<V>(options);
    case 'ttl':
      return new TtlStore<V>(options);
    case 'tinylfu':
      return new TinyLfuStore<V>(options);
  }
}
