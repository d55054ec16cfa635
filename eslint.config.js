import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', '.tap/**', 'coverage/**', 'examples/public/vendor/**'] }),
  {
    files: ['lib/**/*.ts'],
    rules: {
      // Library code logs through Fastify's pino logger, never the console.
      'no-console': 'error'
    }
  }
]
