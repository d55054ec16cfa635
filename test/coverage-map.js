// Coverage counts lib/ only: examples and benches are proven by their own tests, not by the gate.
export default function coverageMap (testFile) {
  return ['lib/']
}
