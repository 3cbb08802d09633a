// A second MQTT broker implementation for the interop tests: aedes (Node.js)
// on 127.0.0.1, one plain TCP listener and, with --cert/--key, one TLS
// listener, both on ports the kernel picks (port 0), so there is no race for
// a free port. Prints one line "ready <tcp-port> <tls-port|0>" when both
// listen; logs connections and refusals on stderr. Stop it by its PID
// (SIGTERM/SIGINT close the listeners and exit).
//
//   node aedes_broker.js --modules DIR/node_modules [--cert FILE --key FILE]
//
// aedes is loaded from --modules (installed there by tests/interop/interop.py),
// not from a node_modules next to this file.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'

const opt = {}
for (let i = 2; i < process.argv.length; i += 2) {
  opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
}
if (!opt.modules) {
  console.error('aedes_broker: --modules DIR is required')
  process.exit(2)
}
const req = createRequire(path.join(path.resolve(opt.modules), 'index.js'))
const { Aedes } = await import(pathToFileURL(req.resolve('aedes')).href)

const broker = await Aedes.createBroker({ heartbeatInterval: 3600000, drainTimeout: 10000 })
const log = (...a) => console.error('aedes:', ...a)
broker.on('client', (c) => log('client connected', c.id))
broker.on('clientDisconnect', (c) => log('client disconnected', c.id))
broker.on('clientError', (c, e) => log('client error', c ? c.id : '-', e.message))
broker.on('connectionError', (c, e) => log('connection error', c ? c.id : '-', e.message))

function listen (server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server.address().port))
  })
}

const servers = [net.createServer(broker.handle)]
if (opt.cert) {
  servers.push(tls.createServer({
    cert: fs.readFileSync(opt.cert),
    key: fs.readFileSync(opt.key),
    minVersion: 'TLSv1.2'
  }, broker.handle))
  servers[1].on('tlsClientError', (e) => log('tls error', e.message))
}
const ports = []
for (const s of servers) ports.push(await listen(s))
console.log('ready', ports[0], ports[1] || 0)

function stop () {
  for (const s of servers) s.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
