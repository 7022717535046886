export interface HistogramOptions {
  /** The smallest value told apart from smaller ones; smaller values count as this. Default 0.001. */
  lowest?: number;
  /** The largest value told apart from larger ones; larger values count as this. Default 3_600_000. */
  highest?: number;
  /** Largest relative error of a reported percentile, for example 0.01 for 1%. Default 0.01. */
  precision?: number;
}

/** A histogram as plain data, to send between threads. */
export interface HistogramData {
  options: Required<HistogramOptions>;
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/**
 * A log-bucketed histogram of positive values (latencies in milliseconds, say): recording is a
 * logarithm and an increment in a preallocated array, and percentiles are exact to within
 * `precision` (relative). Bucket i holds [lowest·rⁱ, lowest·rⁱ⁺¹) with r = (1 + precision)², and
 * reports its geometric middle, which is within `precision` of every value in the bucket. The
 * minimum, maximum and sum are kept exactly.
 */
export class Histogram {
  readonly #options: Required<HistogramOptions>;
  readonly #lowest: number;
  readonly #ratio: number;
  readonly #perLog2: number;
  readonly #counts: Float64Array;
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;

  constructor(options: HistogramOptions = {}) {
    const lowest = options.lowest ?? 0.001;
    const highest = options.highest ?? 3_600_000;
    const precision = options.precision ?? 0.01;
    if (!(lowest > 0 && highest > lowest && precision > 0 && precision < 1)) {
      throw new RangeError("a histogram needs 0 < lowest < highest and 0 < precision < 1");
    }
    this.#options = { lowest, highest, precision };
    this.#lowest = lowest;
    this.#ratio = (1 + precision) ** 2;
    this.#perLog2 = 1 / Math.log2(this.#ratio);
    this.#counts = new Float64Array(Math.ceil(Math.log2(highest / lowest) * this.#perLog2) + 1);
  }

  /** Counts one value. */
  record(value: number): void {
    const counts = this.#counts;
    let i = value > this.#lowest ? Math.floor(Math.log2(value / this.#lowest) * this.#perLog2) : 0;
    if (i >= counts.length) i = counts.length - 1;
    counts[i] = (counts[i] as number) + 1;
    this.#count++;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  /** Adds another histogram's values; both must have been made with the same options. */
  add(other: Histogram): void {
    if (other.#counts.length !== this.#counts.length || other.#ratio !== this.#ratio) {
      throw new RangeError("only histograms made with the same options can be added");
    }
    for (let i = 0; i < this.#counts.length; i++) {
      this.#counts[i] = (this.#counts[i] as number) + (other.#counts[i] as number);
    }
    this.#count += other.#count;
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
  }

  /** The histogram as plain data (sharing its counts), for `Histogram.fromData`. */
  toData(): HistogramData {
    return {
      options: this.#options,
      counts: this.#counts,
      count: this.#count,
      sum: this.#sum,
      min: this.#min,
      max: this.#max,
    };
  }

  /** A histogram made from `toData()`'s result, for example one sent by another thread. */
  static fromData(data: HistogramData): Histogram {
    const histogram = new Histogram(data.options);
    if (data.counts.length !== histogram.#counts.length) {
      throw new RangeError("the counts do not match the options");
    }
    histogram.#counts.set(data.counts);
    histogram.#count = data.count;
    histogram.#sum = data.sum;
    histogram.#min = data.min;
    histogram.#max = data.max;
    return histogram;
  }

  get count(): number {
    return this.#count;
  }

  /** The smallest value recorded, exactly; NaN when empty. */
  get min(): number {
    return this.#count === 0 ? Number.NaN : this.#min;
  }

  /** The largest value recorded, exactly; NaN when empty. */
  get max(): number {
    return this.#count === 0 ? Number.NaN : this.#max;
  }

  /** The mean, exactly; NaN when empty. */
  get mean(): number {
    return this.#count === 0 ? Number.NaN : this.#sum / this.#count;
  }

  /**
   * The value at quantile `q` (0 < q ≤ 1; 0.99 is p99): the smallest recorded value that at least
   * q of all values do not exceed, to within the precision. NaN when empty.
   */
  quantile(q: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) {
        const middle = this.#lowest * this.#ratio ** (i + 0.5);
        return Math.min(Math.max(middle, this.#min), this.#max);
      }
    }
    return this.#max;
  }
}
