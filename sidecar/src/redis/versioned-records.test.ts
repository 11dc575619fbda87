import { describe, expect, it } from 'vitest';
import { LocalVersionSource } from './versioned-records.js';

describe('LocalVersionSource', () => {
  it('gives microseconds of the clock, strictly increasing even when the clock stands still or goes back', async () => {
    let now = 1_700_000_000_000;
    const source = new LocalVersionSource(() => now);
    expect(await source.nextVersion()).toBe(1_700_000_000_000_000);
    expect(await source.nextVersion()).toBe(1_700_000_000_000_001);
    now -= 5;
    expect(await source.nextVersion()).toBe(1_700_000_000_000_002);
    now += 10;
    expect(await source.nextVersion()).toBe(1_700_000_000_005_000);
    expect(Number.isSafeInteger(await source.nextVersion())).toBe(true);
  });
});
