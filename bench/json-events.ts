// The realistic JSON event the compression benchmark streams: an order update of about 400 bytes,
// the same shape every time with the values changing, as application events are.

const STATUSES = ['placed', 'paid', 'packed', 'shipped', 'delivered']
const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Edsger Dijkstra', 'Barbara Liskov']

export function jsonEvent (i: number): { id: number, event: string, data: unknown } {
  return {
    id: i,
    event: 'order.updated',
    data: {
      orderId: `ord_${(1_000_000 + i * 7919).toString(36)}`,
      status: STATUSES[i % STATUSES.length],
      updatedAt: new Date(1_700_000_000_000 + i * 1337).toISOString(),
      customer: { id: 10_000 + (i * 31) % 997, name: NAMES[i % NAMES.length], country: i % 3 === 0 ? 'FR' : 'US' },
      items: Array.from({ length: 1 + (i % 3) }, (_, k) => ({
        sku: `SKU-${(i * 13 + k) % 500}`,
        quantity: 1 + ((i + k) % 4),
        unitPrice: Math.round((9.99 + ((i * 17 + k) % 90)) * 100) / 100
      })),
      total: Math.round((19.98 + (i % 250) * 1.37) * 100) / 100,
      currency: 'EUR'
    }
  }
}
