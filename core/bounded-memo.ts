// Values computed from a string key, kept for the next call with the same key, at most `max` of
// them: when full, every kept value is forgotten at once (no bookkeeping per call, as an LRU
// would need, on paths that run for every message). A computation that throws keeps nothing.
export class BoundedMemo<V> {
  private readonly values = new Map<string, V>();

  constructor(
    private readonly max: number,
    private readonly compute: (key: string) => V,
  ) {}

  get(key: string): V {
    let value = this.values.get(key);
    if (value === undefined) {
      value = this.compute(key);
      if (this.values.size >= this.max) this.values.clear();
      this.values.set(key, value);
    }
    return value;
  }

  /** Values kept now. */
  get size(): number {
    return this.values.size;
  }
}
