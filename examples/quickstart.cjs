const { Database } = require('hannoy')

async function main() {
  const db = await Database.open('./vectors')
  const writer = db.writer(0, { dimensions: 3, metric: 'cosine' })
  await writer.addItems(new Uint32Array([1, 2, 3]), new Float32Array([1, 0, 0, 0, 1, 0, 0.9, 0.1, 0]))
  await writer.build()
  const reader = await db.reader(0)
  console.log(await reader.search(new Float32Array([1, 0, 0]), { k: 2 }))
  await db.close()
}

main()
