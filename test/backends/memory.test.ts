import t from 'tap'
import { buildApp } from '../fixtures/app.js'
import { channelContract } from './contract.js'

// The channel contract with the default backend: one app, history in memory.
channelContract(t, (t, options) => buildApp(t, options))
