#!/usr/bin/env node
// Runs the compiled operator (npm run build). From a source checkout: npx tsx operator/src/main.ts
import '../dist/operator/src/main.js';
