// A plain MQTT subscriber without any key (MQTT.js): what an ordinary client
// of the broker gets. Prints {"ready": true} once every subscription is
// granted, then one JSON line per message: {"topic", "hex", "retain"}.
//
//   node raw_sub.js --modules DIR/node_modules --url mqtt(s)://127.0.0.1:PORT
//        [--ca FILE] [--version 4|5] --topic FILTER [--topic FILTER ...]
//
// Stop it by its PID.
import { createRequire } from 'node:module'
import fs from 'node:fs'
import path from 'node:path'

const opt = { topic: [] }
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '')
  if (k === 'topic') opt.topic.push(process.argv[i + 1])
  else opt[k] = process.argv[i + 1]
}
const req = createRequire(path.join(path.resolve(opt.modules), 'index.js'))
const mqtt = req('mqtt')

const client = mqtt.connect(opt.url, {
  protocolVersion: Number(opt.version || 4),
  clientId: 'rawjs-' + process.pid,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 10000,
  ca: opt.ca ? [fs.readFileSync(opt.ca)] : undefined,
  rejectUnauthorized: true
})
client.on('error', (e) => { console.error('raw_sub: error', e.message); process.exit(1) })
client.on('close', () => console.error('raw_sub: connection closed'))
client.on('connect', () => {
  client.subscribe(opt.topic, { qos: 1 }, (err, granted) => {
    if (err || granted.some((g) => g.qos > 2)) {
      console.error('raw_sub: subscribe failed', err ? err.message : JSON.stringify(granted))
      process.exit(1)
    }
    console.log(JSON.stringify({ ready: true }))
  })
})
client.on('message', (topic, payload, packet) => {
  console.log(JSON.stringify({ topic, hex: payload.toString('hex'), retain: !!packet.retain }))
})
process.on('SIGTERM', () => { client.end(true); process.exit(0) })
