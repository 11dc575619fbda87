import { describe, expect, it } from 'vitest';
import { clientErrorAnswer, rawErrorResponse } from './http-server.js';

const parseError = (code: string, reason: string) =>
  Object.assign(new Error(`Parse Error: ${reason}`), { code, reason });

describe("answers to requests Node's parser refuses", () => {
  it('maps parser errors to stable codes', () => {
    expect(clientErrorAnswer(parseError('HPE_HEADER_OVERFLOW', 'Header overflow')).code).toBe('HeadersTooLarge');
    expect(clientErrorAnswer(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })).code).toBe(
      'RequestTimeout',
    );
    const bad = clientErrorAnswer(parseError('HPE_INVALID_METHOD', 'Invalid method encountered'));
    expect(bad).toEqual({
      code: 'BadRequest',
      message: 'the request is not valid HTTP/1.1 (HPE_INVALID_METHOD: Invalid method encountered)',
    });
  });

  it('writes a complete response: status line, JSON body, Content-Length, Connection: close', () => {
    const text = rawErrorResponse('HeadersTooLarge', 'too big ü');
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(lines).toContain('Connection: close');
    expect(lines).toContain('Content-Type: application/json; charset=utf-8');
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toEqual({ error: { code: 'HeadersTooLarge', message: 'too big ü' } });
    expect(rawErrorResponse('BadRequest', 'x').startsWith('HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    expect(rawErrorResponse('RequestTimeout', 'x').startsWith('HTTP/1.1 408 Request Timeout\r\n')).toBe(true);
  });
});
