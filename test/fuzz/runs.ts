/**
 * How many cases each property-based test runs: a slice in `npm test` (CI), the full number in
 * `npm run fuzz` (POLKU_FUZZ_RUNS=100000). A failing case prints fast-check's seed and path, so
 * `fc.assert(..., { seed, path })` replays it exactly.
 */
export function fuzzRuns(slice = 2_000): number {
  const asked = Number(process.env['POLKU_FUZZ_RUNS']);
  return Number.isInteger(asked) && asked > 0 ? asked : slice;
}

/**
 * fast-check's parameters for a property: {@link fuzzRuns} cases, and a failure's replay. A failing
 * property's error (printed by the test runner, in CI too) reads `Property failed after N tests
 * { seed: S, path: "P", endOnFailure: true } Counterexample: …`; run the same file with
 * `POLKU_FUZZ_SEED=S POLKU_FUZZ_PATH=P` to replay exactly that case (the seed alone replays the
 * run from its start). `verbose` adds the failing case's own error beside the shrunk one.
 */
export function fuzzParameters(slice = 2_000): { numRuns: number; seed?: number; path?: string; verbose: number } {
  const seed = Number(process.env['POLKU_FUZZ_SEED']);
  const path = process.env['POLKU_FUZZ_PATH'];
  return {
    numRuns: fuzzRuns(slice),
    verbose: 1,
    ...(Number.isInteger(seed) && process.env['POLKU_FUZZ_SEED'] !== '' ? { seed } : {}),
    ...(path ? { path } : {}),
  };
}
