#!/usr/bin/env node
// Runs the compiled sidecar (npm run build). From a source checkout: npx tsx sidecar/src/main.ts
import '../dist/sidecar/src/main.js';
