#!/usr/bin/env node
// Runs the compiled cross-cluster bridge (npm run build). From a source checkout: npx tsx sidecar/src/bridge/main.ts
import '../dist/sidecar/src/bridge/main.js';
