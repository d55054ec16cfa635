// Which lib/ files each test file may count toward the coverage gate (tap's coverage-map).
// Example tests prove the examples; lib/ is covered by its own specifications. The demo test also
// runs lib/ in a child process through tsx, whose transpiled code differs from tap's: merged, that
// coverage corrupts the report. So example tests count for nothing ([] means "the default set").
export default function coverageMap (testFile) {
  return testFile.replaceAll('\\', '/').startsWith('test/examples/') ? null : []
}
