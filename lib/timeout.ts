/**
 * `promise`, or what `onTimeout` returns (or throws) once `ms` pass first. The timer is cleared as
 * soon as the promise settles, so it holds the process no longer than the promise does.
 */
export function withTimeout<T> (promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout())
      } catch (err) {
        reject(err)
      }
    }, ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
