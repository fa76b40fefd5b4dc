#!/usr/bin/env node
// Bundle check for Espruino (../shared/DESIGN.md section 2).
//
// esbuild (with tools/esbuild-espruino.mjs) turns the syntax Espruino lacks into build errors, but it
// cannot see library features that are missing at run time (Map, Set, Array.from, Promise finally...)
// nor the traps that parse fine and fail later (calls that rely on function hoisting, a class naming
// itself inside its own body). This check parses the finished bundle with acorn, resolves every
// identifier through a real scope analysis (so `x.Map`, `{Set: 1}`, a local named Map, strings and
// comments are not findings), and reports each use of something Espruino does not have.
//
// API:  checkBundle(jsText, { fileName, sourceMap, globals }) -> Finding[]   (globals: names a bundle run
//       at the global scope must not declare, rule global-clobber)
//       Finding = { rule, message, line, column, snippet, source? }   (line and column are 1-based;
//       source = { file, line, column } from the source map when one is given)
// CLI:  node tools/bundle-check.mjs dist/codec.js [...]   (uses file.js.map when it exists)
//       prints one line per finding; exit 0 clean, 1 findings, 2 usage or unreadable file.

import * as acorn from 'acorn';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Every rule this check applies, with the reason shown in its findings. */
export const RULES = {
  'parse-error': 'the bundle does not parse as a script',
  'unsupported-global': 'this global does not exist on Espruino',
  'unsupported-static': 'this static method does not exist on Espruino',
  'builtin-prototype': 'Array/String/Function.prototype members are not reachable as such on Espruino (use [].slice.call(x))',
  'promise-finally': 'Promise.prototype.finally does not exist on Espruino',
  'async-function': 'async functions do not run on Espruino',
  await: 'await does not run on Espruino',
  'for-await': 'for await does not run on Espruino',
  generator: 'generators (function*, yield) do not run on Espruino',
  'class-self-reference': 'a class cannot name itself inside its own body on Espruino (use this / this.constructor)',
  'class-extends-error': 'class X extends Error breaks on Espruino',
  'class-field': 'class fields do not run on Espruino',
  'private-member': '#private members do not run on Espruino',
  'class-static-block': 'class static blocks do not run on Espruino',
  'exponent-operator': 'the ** operator does not run on Espruino (use Math.pow)',
  'optional-chaining': '?. does not run on Espruino',
  'labelled-statement': 'labelled statements (labelled break/continue) do not run on Espruino',
  'unicode-code-point-escape': '\\u{...} escapes do not run on Espruino',
  destructuring: 'destructuring does not run on Espruino',
  'default-parameter': 'default parameters do not run on Espruino',
  'rest-parameter': 'rest parameters/elements do not run on Espruino',
  spread: 'spread does not run on Espruino',
  'computed-key': 'computed property keys do not run on Espruino',
  'tagged-template': 'tagged templates do not run on Espruino',
  'new-target': 'new.target does not run on Espruino',
  bigint: 'BigInt literals do not run on Espruino',
  'strict-mode': '"use strict" does not run on Espruino',
  'loop-closure': 'closures created in a for (let ...) loop all see the last value on Espruino',
  hoisting: 'function declarations are not hoisted on Espruino (not defined before their statement runs)',
  'global-clobber': 'a top-level declaration replaces an Espruino global of the same name',
};

/** Globals Espruino does not have (a read or write of the global, not a property name). */
export const UNSUPPORTED_GLOBALS = [
  'Map', 'Set', 'WeakMap', 'WeakSet', 'Symbol', 'TextEncoder', 'TextDecoder', 'BigInt', 'Proxy', 'Reflect',
];

const TYPED_ARRAYS = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float32Array', 'Float64Array',
];

/** Static members of globals that Espruino lacks: { Global: [member, ...] }. */
export const UNSUPPORTED_STATICS = {
  Array: ['from', 'of'],
  Object: ['freeze'],
  Promise: ['race', 'allSettled', 'any'],
  Number: ['isInteger'],
  Math: ['imul', 'trunc'],
  ...Object.fromEntries(TYPED_ARRAYS.map((t) => [t, ['from', 'of']])),
};

const PROTOTYPE_UNREACHABLE = ['Array', 'String', 'Function'];
const ERROR_CLASSES = ['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError'];
const GLOBAL_OBJECTS = ['globalThis', 'global', 'window', 'self'];
/** Methods that call a function argument synchronously, before they return. */
const SYNC_CALLBACK_METHODS = [
  'forEach', 'map', 'filter', 'some', 'every', 'reduce', 'reduceRight', 'find', 'findIndex', 'sort',
];

const isFunctionNode = (n) =>
  !!n && (n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression');
const isFunctionExpr = (n) => !!n && (n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression');

/** The static name of a member expression's property, or undefined when it is dynamic. */
function memberName(node) {
  if (!node.computed && node.property.type === 'Identifier') return node.property.name;
  if (node.computed && node.property.type === 'Literal' && typeof node.property.value === 'string') {
    return node.property.value;
  }
  return undefined;
}

/** True when raw source text (a token) holds a \u{...} escape (an escaped backslash does not count). */
function hasCodePointEscape(raw) {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== '\\') continue;
    if (raw[i + 1] === 'u' && raw[i + 2] === '{') return true;
    i++;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Source maps: just enough of the v3 format to map a bundle position back to the TypeScript source.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = Object.fromEntries([...B64].map((c, i) => [c, i]));

function decodeVlqSegment(segment) {
  const out = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64_INDEX[ch];
    if (digit === undefined) throw new Error('bad source map mapping character ' + JSON.stringify(ch));
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

/**
 * Make a lookup function (line 1-based, column 0-based) -> {file, line, column} (1-based) or
 * undefined, from a v3 source map (object or JSON text).
 */
export function sourceMapLookup(sourceMap) {
  const map = typeof sourceMap === 'string' ? JSON.parse(sourceMap) : sourceMap;
  const lines = String(map.mappings || '').split(';');
  const decoded = []; // per generated line: [[genCol, srcIdx, srcLine, srcCol], ...]
  let srcIdx = 0;
  let srcLine = 0;
  let srcCol = 0;
  for (const line of lines) {
    const segs = [];
    let genCol = 0;
    for (const seg of line.split(',')) {
      if (!seg) continue;
      const f = decodeVlqSegment(seg);
      genCol += f[0];
      if (f.length >= 4) {
        srcIdx += f[1];
        srcLine += f[2];
        srcCol += f[3];
        segs.push([genCol, srcIdx, srcLine, srcCol]);
      }
    }
    decoded.push(segs);
  }
  const root = map.sourceRoot ? String(map.sourceRoot).replace(/\/?$/, '/') : '';
  return (line, column0) => {
    const segs = decoded[line - 1];
    if (!segs || segs.length === 0) return undefined;
    let best;
    for (const s of segs) {
      if (s[0] <= column0) best = s;
      else break;
    }
    if (!best) return undefined;
    return { file: root + map.sources[best[1]], line: best[2] + 1, column: best[3] + 1 };
  };
}

// ---------------------------------------------------------------------------------------------
// Scopes.

class Scope {
  /** @param {string} kind @param {Scope|null} parent @param {object} fn owning function node (or Program) */
  constructor(kind, parent, fn) {
    this.kind = kind;
    this.parent = parent;
    this.fn = fn;
    this.bindings = new Map();
  }
  lookup(name) {
    for (let s = this; s; s = s.parent) {
      const b = s.bindings.get(name);
      if (b) return b;
    }
    return null;
  }
}

/** Names bound by a declaration pattern. */
function patternIds(pattern, out = []) {
  if (!pattern) return out;
  switch (pattern.type) {
    case 'Identifier':
      out.push(pattern);
      break;
    case 'ObjectPattern':
      for (const p of pattern.properties) patternIds(p.type === 'RestElement' ? p : p.value, out);
      break;
    case 'ArrayPattern':
      for (const e of pattern.elements) patternIds(e, out);
      break;
    case 'AssignmentPattern':
      patternIds(pattern.left, out);
      break;
    case 'RestElement':
      patternIds(pattern.argument, out);
      break;
    default:
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * Check one bundle's text for what Espruino cannot run.
 * @param {string} jsText the bundle (minified or not)
 * @param {{fileName?: string, sourceMap?: object|string, globals?: string[]}} [options]
 * @returns {Array<{rule: string, message: string, line: number, column: number, snippet: string,
 *   source?: {file: string, line: number, column: number}}>} sorted by position
 */
export function checkBundle(jsText, options = {}) {
  const fileName = options.fileName || '<bundle>';
  const findings = [];
  const seen = new Set();
  const lines = jsText.split(/\r\n|\r|\n/);

  const snippetAt = (line, column0) => {
    const text = lines[line - 1] || '';
    const from = Math.max(0, column0 - 30);
    const to = Math.min(text.length, column0 + 50);
    return (from > 0 ? '...' : '') + text.slice(from, to) + (to < text.length ? '...' : '');
  };
  const report = (rule, loc, detail) => {
    const line = loc.line;
    const column = loc.column + 1;
    const key = rule + ':' + line + ':' + column;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push({
      rule,
      message: detail ? RULES[rule] + ': ' + detail : RULES[rule],
      line,
      column,
      snippet: snippetAt(line, loc.column),
      file: fileName,
    });
  };
  const at = (node, rule, detail) => report(rule, node.loc.start, detail);

  let ast;
  try {
    ast = acorn.parse(jsText, {
      ecmaVersion: 'latest',
      sourceType: 'script',
      locations: true,
      onToken(tok) {
        // \u{...} escapes can sit in strings, templates, regular expressions and identifiers.
        const raw = jsText.slice(tok.start, tok.end);
        if (raw.includes('\\') && hasCodePointEscape(raw)) {
          report('unicode-code-point-escape', tok.loc.start, JSON.stringify(raw.slice(0, 40)));
        }
      },
    });
  } catch (err) {
    const loc = err && err.loc ? err.loc : { line: 1, column: 0 };
    report('parse-error', loc, err && err.message ? err.message : String(err));
    return finish();
  }

  // A bundle that runs at the global scope (a device program) must not declare an interpreter global.
  if (options.globals) {
    const taken = new Set(options.globals);
    for (const st of ast.body) {
      const ids = st.type === 'VariableDeclaration' ? st.declarations.map((d) => d.id) : st.id ? [st.id] : [];
      for (const id of ids) if (id && id.type === 'Identifier' && taken.has(id.name)) at(id, 'global-clobber', id.name);
    }
  }

  // ---- Pass 1: scopes, references, and every rule that needs only the node and its bindings. ----

  /** Identifier reference node -> Binding or null (global). */
  const refs = new Map();
  /** function node (or Program) -> function-declaration bindings owned by its scopes */
  const localFunctionDecls = new Map();
  /** functions run at once where they are written: IIFEs, sync callbacks, Promise executors */
  const immediateFns = new Set();
  const classStack = [];
  const fnStack = []; // {fn, deferred}
  const loopStack = []; // {bindings: Set, depth}

  const declare = (scope, id, kind, extra = {}) => {
    if (scope.bindings.has(id.name)) {
      const existing = scope.bindings.get(id.name);
      if (kind === 'var' || existing.kind === 'function') return existing;
    }
    const b = { name: id.name, kind, id, scope, ...extra };
    scope.bindings.set(id.name, b);
    if (kind === 'function') {
      const list = localFunctionDecls.get(scope.fn) || [];
      list.push(b);
      localFunctionDecls.set(scope.fn, list);
    }
    return b;
  };

  const hoistVars = (stmts, fnScope) => {
    const visitStmt = (s) => {
      if (!s) return;
      switch (s.type) {
        case 'VariableDeclaration':
          if (s.kind === 'var') {
            for (const d of s.declarations) {
              const ids = patternIds(d.id);
              for (const id of ids) {
                const extra = ids.length === 1 && d.id.type === 'Identifier' ? { init: d.init } : {};
                declare(fnScope, id, 'var', extra);
              }
            }
          }
          break;
        case 'BlockStatement':
          s.body.forEach(visitStmt);
          break;
        case 'IfStatement':
          visitStmt(s.consequent);
          visitStmt(s.alternate);
          break;
        case 'ForStatement':
          visitStmt(s.init && s.init.type === 'VariableDeclaration' ? s.init : null);
          visitStmt(s.body);
          break;
        case 'ForInStatement':
        case 'ForOfStatement':
          visitStmt(s.left.type === 'VariableDeclaration' ? s.left : null);
          visitStmt(s.body);
          break;
        case 'WhileStatement':
        case 'DoWhileStatement':
        case 'LabeledStatement':
        case 'WithStatement':
          visitStmt(s.body);
          break;
        case 'TryStatement':
          visitStmt(s.block);
          if (s.handler) visitStmt(s.handler.body);
          visitStmt(s.finalizer);
          break;
        case 'SwitchStatement':
          for (const c of s.cases) c.consequent.forEach(visitStmt);
          break;
        default:
          break;
      }
    };
    stmts.forEach(visitStmt);
  };

  const hoistLexical = (stmts, scope) => {
    for (const s of stmts) {
      if (s.type === 'VariableDeclaration' && s.kind !== 'var') {
        for (const d of s.declarations) {
          const ids = patternIds(d.id);
          for (const id of ids) declare(scope, id, s.kind, ids.length === 1 && d.id.type === 'Identifier' ? { init: d.init } : {});
        }
      } else if (s.type === 'FunctionDeclaration' && s.id) {
        declare(scope, s.id, 'function', { fn: s });
      } else if (s.type === 'ClassDeclaration' && s.id) {
        declare(scope, s.id, 'class', { cls: s });
      }
    }
  };

  const checkDirectives = (stmts) => {
    for (const s of stmts) {
      if (s.type !== 'ExpressionStatement' || typeof s.directive !== 'string') break;
      if (s.directive === 'use strict') at(s, 'strict-mode');
    }
  };

  const reference = (id, scope) => {
    const b = scope.lookup(id.name);
    refs.set(id, b);
    if (!b) {
      if (UNSUPPORTED_GLOBALS.includes(id.name)) at(id, 'unsupported-global', id.name);
      return;
    }
    if (b.cls && classStack.includes(b.cls)) {
      at(id, 'class-self-reference', 'class ' + b.name + ' refers to itself');
    }
    for (const loop of loopStack) {
      if (!loop.bindings.has(b)) continue;
      const inner = fnStack.slice(loop.depth);
      if (inner.some((f) => f.deferred)) {
        at(id, 'loop-closure', '"' + b.name + '" is captured by a function created inside the loop');
      }
    }
  };

  const walkChildren = (node, scope) => {
    for (const key of Object.keys(node)) {
      if (key === 'type' || key === 'loc' || key === 'start' || key === 'end') continue;
      const v = node[key];
      if (Array.isArray(v)) {
        for (const c of v) if (c && typeof c.type === 'string') walk(c, scope);
      } else if (v && typeof v.type === 'string') {
        walk(v, scope);
      }
    }
  };

  /** A declaration pattern: its identifiers are bindings (already declared), not references. */
  const walkPattern = (p, scope) => {
    if (!p) return;
    switch (p.type) {
      case 'Identifier':
        return;
      case 'ObjectPattern':
        at(p, 'destructuring');
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') {
            at(prop, 'rest-parameter');
            walkPattern(prop.argument, scope);
          } else {
            if (prop.computed) walk(prop.key, scope);
            walkPattern(prop.value, scope);
          }
        }
        return;
      case 'ArrayPattern':
        at(p, 'destructuring');
        for (const e of p.elements) walkPattern(e, scope);
        return;
      case 'AssignmentPattern':
        walkPattern(p.left, scope);
        walk(p.right, scope);
        return;
      case 'RestElement':
        at(p, 'rest-parameter');
        walkPattern(p.argument, scope);
        return;
      default:
        walk(p, scope); // MemberExpression target in an assignment pattern
    }
  };

  /** An assignment target: identifiers here are references (writes). */
  const walkTarget = (t, scope) => {
    if (!t) return;
    switch (t.type) {
      case 'Identifier':
        reference(t, scope);
        return;
      case 'ObjectPattern':
        at(t, 'destructuring');
        for (const prop of t.properties) {
          if (prop.type === 'RestElement') {
            at(prop, 'rest-parameter');
            walkTarget(prop.argument, scope);
          } else {
            if (prop.computed) walk(prop.key, scope);
            walkTarget(prop.value, scope);
          }
        }
        return;
      case 'ArrayPattern':
        at(t, 'destructuring');
        for (const e of t.elements) walkTarget(e, scope);
        return;
      case 'AssignmentPattern':
        walkTarget(t.left, scope);
        walk(t.right, scope);
        return;
      case 'RestElement':
        at(t, 'rest-parameter');
        walkTarget(t.argument, scope);
        return;
      default:
        walk(t, scope);
    }
  };

  const walkFunction = (fn, outer) => {
    if (fn.async) at(fn, 'async-function');
    if (fn.generator) at(fn, 'generator', 'function*');
    let scope = outer;
    if (fn.type === 'FunctionExpression' && fn.id) {
      scope = new Scope('function-name', outer, outer.fn);
      declare(scope, fn.id, 'function-name', { fn });
    }
    const fs = new Scope('function', scope, fn);
    for (const p of fn.params) for (const id of patternIds(p)) declare(fs, id, 'param');
    fnStack.push({ fn, deferred: !immediateFns.has(fn) });
    for (const p of fn.params) {
      if (p.type === 'AssignmentPattern') {
        at(p, 'default-parameter');
        walkPattern(p.left, fs);
        walk(p.right, fs);
      } else {
        walkPattern(p, fs);
      }
    }
    if (fn.body.type === 'BlockStatement') {
      checkDirectives(fn.body.body);
      hoistVars(fn.body.body, fs);
      hoistLexical(fn.body.body, fs);
      for (const s of fn.body.body) walk(s, fs);
    } else {
      walk(fn.body, fs);
    }
    fnStack.pop();
  };

  const walkClass = (cls, outer) => {
    if (cls.superClass) {
      walk(cls.superClass, outer);
      if (cls.superClass.type === 'Identifier' && !outer.lookup(cls.superClass.name) && ERROR_CLASSES.includes(cls.superClass.name)) {
        at(cls.superClass, 'class-extends-error', 'extends ' + cls.superClass.name);
      }
    }
    let scope = outer;
    if (cls.id) {
      scope = new Scope('class-name', outer, outer.fn);
      declare(scope, cls.id, 'class-name', { cls });
    }
    classStack.push(cls);
    for (const el of cls.body.body) {
      if (el.type === 'StaticBlock') {
        at(el, 'class-static-block');
        const fs = new Scope('function', scope, el);
        hoistVars(el.body, fs);
        hoistLexical(el.body, fs);
        fnStack.push({ fn: el, deferred: false });
        for (const s of el.body) walk(s, fs);
        fnStack.pop();
        continue;
      }
      if (el.key && el.key.type === 'PrivateIdentifier') at(el.key, 'private-member', '#' + el.key.name);
      if (el.computed) {
        at(el.key, 'computed-key');
        walk(el.key, scope);
      }
      if (el.type === 'PropertyDefinition') {
        at(el, 'class-field');
        if (el.value) {
          const fs = new Scope('function', scope, el);
          fnStack.push({ fn: el, deferred: !el.static });
          walk(el.value, fs);
          fnStack.pop();
        }
      } else if (el.type === 'MethodDefinition') {
        walkFunction(el.value, scope);
      }
    }
    classStack.pop();
  };

  const markImmediateCallbacks = (node) => {
    const callee = node.callee;
    if (node.type === 'CallExpression') {
      if (isFunctionExpr(callee)) immediateFns.add(callee);
      if (callee.type === 'MemberExpression') {
        const name = memberName(callee);
        if ((name === 'call' || name === 'apply') && isFunctionExpr(callee.object)) immediateFns.add(callee.object);
        if (SYNC_CALLBACK_METHODS.includes(name)) for (const a of node.arguments) if (isFunctionExpr(a)) immediateFns.add(a);
      }
    } else if (node.type === 'NewExpression' && callee.type === 'Identifier' && callee.name === 'Promise') {
      if (isFunctionExpr(node.arguments[0])) immediateFns.add(node.arguments[0]);
    }
  };

  const checkMember = (node, scope) => {
    const name = memberName(node);
    if (node.property.type === 'PrivateIdentifier') at(node.property, 'private-member', '#' + node.property.name);
    if (name === 'finally') at(node.property, 'promise-finally', '.finally');
    const obj = node.object;
    if (obj.type === 'Identifier' && name !== undefined && !scope.lookup(obj.name)) {
      const banned = Object.prototype.hasOwnProperty.call(UNSUPPORTED_STATICS, obj.name) ? UNSUPPORTED_STATICS[obj.name] : null;
      if (banned && banned.includes(name)) at(node, 'unsupported-static', obj.name + '.' + name);
      if (GLOBAL_OBJECTS.includes(obj.name) && UNSUPPORTED_GLOBALS.includes(name)) at(node, 'unsupported-global', obj.name + '.' + name);
    }
    if (
      obj.type === 'MemberExpression' &&
      obj.object.type === 'Identifier' &&
      PROTOTYPE_UNREACHABLE.includes(obj.object.name) &&
      memberName(obj) === 'prototype' &&
      !scope.lookup(obj.object.name)
    ) {
      at(node, 'builtin-prototype', obj.object.name + '.prototype' + (name !== undefined ? '.' + name : '[...]'));
    }
  };

  const loopScope = (node, scope, decl) => {
    const s = new Scope('block', scope, scope.fn);
    let loop = null;
    if (decl && decl.type === 'VariableDeclaration' && decl.kind !== 'var') {
      const bindings = new Set();
      for (const d of decl.declarations) for (const id of patternIds(d.id)) bindings.add(declare(s, id, decl.kind));
      if (node.type === 'ForStatement') loop = { bindings, depth: fnStack.length };
    }
    return { s, loop };
  };

  function walk(node, scope) {
    if (!node) return;
    switch (node.type) {
      case 'Program': {
        const s = new Scope('function', null, node);
        checkDirectives(node.body);
        hoistVars(node.body, s);
        hoistLexical(node.body, s);
        for (const st of node.body) walk(st, s);
        return;
      }
      case 'Identifier':
        reference(node, scope);
        return;
      case 'PrivateIdentifier':
        at(node, 'private-member', '#' + node.name);
        return;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        walkFunction(node, scope);
        return;
      case 'ClassDeclaration':
      case 'ClassExpression':
        walkClass(node, scope);
        return;
      case 'VariableDeclaration':
        for (const d of node.declarations) {
          walkPattern(d.id, scope);
          walk(d.init, scope);
        }
        return;
      case 'MemberExpression':
        checkMember(node, scope);
        walk(node.object, scope);
        if (node.computed) walk(node.property, scope);
        return;
      case 'Property':
        if (node.computed) {
          at(node.key, 'computed-key');
          walk(node.key, scope);
        }
        walk(node.value, scope);
        return;
      case 'LabeledStatement':
        at(node, 'labelled-statement', node.label.name + ':');
        walk(node.body, scope);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
        return;
      case 'MetaProperty':
        if (node.meta.name === 'new') at(node, 'new-target');
        return;
      case 'BlockStatement':
      case 'StaticBlock': {
        const s = new Scope('block', scope, scope.fn);
        hoistLexical(node.body, s);
        for (const st of node.body) walk(st, s);
        return;
      }
      case 'SwitchStatement': {
        walk(node.discriminant, scope);
        const s = new Scope('block', scope, scope.fn);
        for (const c of node.cases) hoistLexical(c.consequent, s);
        for (const c of node.cases) {
          walk(c.test, s);
          for (const st of c.consequent) walk(st, s);
        }
        return;
      }
      case 'ForStatement': {
        const { s, loop } = loopScope(node, scope, node.init);
        walk(node.init, s);
        if (loop) loopStack.push(loop);
        walk(node.test, s);
        walk(node.update, s);
        walk(node.body, s);
        if (loop) loopStack.pop();
        return;
      }
      case 'ForInStatement':
      case 'ForOfStatement': {
        if (node.await) at(node, 'for-await');
        const { s } = loopScope(node, scope, node.left);
        if (node.left.type === 'VariableDeclaration') walk(node.left, s);
        else walkTarget(node.left, s);
        walk(node.right, s);
        walk(node.body, s);
        return;
      }
      case 'CatchClause': {
        const s = new Scope('catch', scope, scope.fn);
        for (const id of patternIds(node.param)) declare(s, id, 'let');
        walkPattern(node.param, s);
        walk(node.body, s);
        return;
      }
      case 'AssignmentExpression':
        if (node.operator === '**=') at(node, 'exponent-operator', '**=');
        walkTarget(node.left, scope);
        walk(node.right, scope);
        return;
      case 'BinaryExpression':
        if (node.operator === '**') at(node, 'exponent-operator', '**');
        walkChildren(node, scope);
        return;
      case 'UnaryExpression':
        // `typeof Map` is a safe feature test on Espruino (it is "undefined" there).
        if (node.operator === 'typeof' && node.argument.type === 'Identifier' && UNSUPPORTED_GLOBALS.includes(node.argument.name)) {
          refs.set(node.argument, scope.lookup(node.argument.name));
          return;
        }
        walkChildren(node, scope);
        return;
      case 'ChainExpression':
        at(node, 'optional-chaining');
        walk(node.expression, scope);
        return;
      case 'TaggedTemplateExpression':
        at(node, 'tagged-template');
        walkChildren(node, scope);
        return;
      case 'Literal':
        if (node.bigint !== undefined) at(node, 'bigint', node.raw);
        return;
      case 'AwaitExpression':
        at(node, 'await');
        walk(node.argument, scope);
        return;
      case 'YieldExpression':
        at(node, 'generator', 'yield');
        walk(node.argument, scope);
        return;
      case 'SpreadElement':
        at(node, 'spread', '...');
        walk(node.argument, scope);
        return;
      case 'ObjectPattern':
      case 'ArrayPattern':
      case 'RestElement':
      case 'AssignmentPattern':
        walkTarget(node, scope);
        return;
      case 'CallExpression':
      case 'NewExpression':
        markImmediateCallbacks(node);
        walk(node.callee, scope);
        for (const a of node.arguments) walk(a, scope);
        return;
      default:
        walkChildren(node, scope);
    }
  }

  walk(ast, null);

  // ---- Pass 2: hoisting. Run the code in source order the way Espruino does: a function declaration
  // exists only once its statement has run. Start at the top level (following immediate calls into
  // the functions they run) and, separately, at every function body (for the run when it is called).

  const bindingOfFunctionDecl = new Map(); // FunctionDeclaration node -> binding
  for (const list of localFunctionDecls.values()) for (const b of list) bindingOfFunctionDecl.set(b.fn, b);

  const calleeFunction = (callee) => {
    if (isFunctionExpr(callee)) return callee;
    if (callee.type === 'Identifier') {
      const b = refs.get(callee);
      if (!b) return null;
      if (b.fn) return b.fn;
      if (isFunctionExpr(b.init)) return b.init;
    }
    return null;
  };
  const constructorOf = (callee) => {
    if (callee.type !== 'Identifier') return null;
    const b = refs.get(callee);
    const cls = b && (b.cls || (b.init && b.init.type === 'ClassExpression' ? b.init : null));
    if (!cls) return null;
    const ctor = cls.body.body.find((m) => m.type === 'MethodDefinition' && m.kind === 'constructor');
    return ctor ? ctor.value : null;
  };

  const simulate = (root) => {
    const pending = new Set();
    const visited = new Set();
    const via = [];
    const inside = (fn) => root.type === 'Program' || (fn.start >= root.start && fn.end <= root.end);

    const run = (fn, callNode) => {
      if (!fn || visited.has(fn) || !inside(fn)) return;
      visited.add(fn);
      if (callNode) via.push(callNode);
      for (const b of localFunctionDecls.get(fn) || []) pending.add(b);
      if (fn.type === 'Program') {
        for (const s of fn.body) exec(s);
      } else if (fn.type === 'StaticBlock') {
        for (const s of fn.body) exec(s);
      } else {
        for (const p of fn.params) exec(p);
        exec(fn.body);
      }
      if (callNode) via.pop();
    };

    const exec = (node) => {
      if (!node || typeof node.type !== 'string') return;
      switch (node.type) {
        case 'FunctionDeclaration': {
          const b = bindingOfFunctionDecl.get(node);
          if (b) pending.delete(b);
          return;
        }
        case 'FunctionExpression':
        case 'ArrowFunctionExpression':
          return; // runs later, if at all
        case 'Identifier': {
          const b = refs.get(node);
          if (b && pending.has(b)) {
            const first = via.length ? via[0].loc.start : null;
            at(node, 'hoisting', '"' + b.name + '" is used at ' + node.loc.start.line + ':' + (node.loc.start.column + 1) +
              ' before its declaration at ' + b.id.loc.start.line + ':' + (b.id.loc.start.column + 1) +
              (first ? ' (this code runs from the call at ' + first.line + ':' + (first.column + 1) + ')' : ''));
          }
          return;
        }
        case 'ClassDeclaration':
        case 'ClassExpression':
          exec(node.superClass);
          for (const el of node.body.body) {
            if (el.computed) exec(el.key);
            if (el.type === 'StaticBlock') run(el, null);
            else if (el.type === 'PropertyDefinition' && el.static) exec(el.value);
          }
          return;
        case 'MemberExpression':
          exec(node.object);
          if (node.computed) exec(node.property);
          return;
        case 'Property':
          if (node.computed) exec(node.key);
          exec(node.value);
          return;
        case 'LabeledStatement':
          exec(node.body);
          return;
        case 'BreakStatement':
        case 'ContinueStatement':
        case 'MetaProperty':
          return;
        case 'CallExpression':
        case 'NewExpression': {
          exec(node.callee);
          for (const a of node.arguments) exec(a);
          const callee = node.callee;
          // `via` names the call that made this code run, for named functions (not IIFEs).
          if (node.type === 'CallExpression') {
            const direct = calleeFunction(callee);
            run(direct, direct && direct !== callee ? node : null);
            if (callee.type === 'MemberExpression') {
              const name = memberName(callee);
              if ((name === 'call' || name === 'apply') && isFunctionExpr(callee.object)) run(callee.object, null);
              if (SYNC_CALLBACK_METHODS.includes(name)) for (const a of node.arguments) run(calleeFunction(a), node);
            }
          } else {
            run(constructorOf(callee), node);
            if (callee.type === 'Identifier' && callee.name === 'Promise' && !refs.get(callee)) {
              run(calleeFunction(node.arguments[0] || { type: 'Literal' }), node);
            }
          }
          return;
        }
        default:
          for (const key of Object.keys(node)) {
            if (key === 'type' || key === 'loc' || key === 'start' || key === 'end') continue;
            const v = node[key];
            if (Array.isArray(v)) v.forEach(exec);
            else if (v && typeof v.type === 'string') exec(v);
          }
      }
    };

    run(root, null);
  };

  simulate(ast);
  const allFunctions = [];
  (function collect(node) {
    if (!node || typeof node.type !== 'string') return;
    if (isFunctionNode(node)) allFunctions.push(node);
    for (const key of Object.keys(node)) {
      if (key === 'type' || key === 'loc' || key === 'start' || key === 'end') continue;
      const v = node[key];
      if (Array.isArray(v)) v.forEach(collect);
      else if (v && typeof v.type === 'string') collect(v);
    }
  })(ast);
  for (const fn of allFunctions) if (localFunctionDecls.has(fn)) simulate(fn);

  return finish();

  function finish() {
    findings.sort((a, b) => a.line - b.line || a.column - b.column || (a.rule < b.rule ? -1 : 1));
    let lookup = null;
    if (options.sourceMap) {
      try {
        lookup = sourceMapLookup(options.sourceMap);
      } catch {
        lookup = null;
      }
    }
    return findings.map((f) => {
      const out = { rule: f.rule, message: f.message, line: f.line, column: f.column, snippet: f.snippet };
      if (lookup) {
        const src = lookup(f.line, f.column - 1);
        if (src) out.source = src;
      }
      return out;
    });
  }
}

/** One line per finding: "file:line:col: [rule] message (source file:line:col)  | snippet". */
export function formatFinding(f, fileName) {
  const src = f.source ? ' (from ' + f.source.file + ':' + f.source.line + ':' + f.source.column + ')' : '';
  return fileName + ':' + f.line + ':' + f.column + ': [' + f.rule + '] ' + f.message + src + '  | ' + f.snippet;
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage: node tools/bundle-check.mjs [--json] FILE.js [FILE.js ...]

Checks Espruino bundles for what esbuild cannot see: missing globals (Map, Set, Symbol,
TextEncoder...), missing statics (Array.from, Object.freeze...), Promise finally, async/await,
generators, class self-reference, calls that need function hoisting, and more (rules below).
Uses FILE.js.map, when it exists, to show the TypeScript source of each finding.

  --json   print the findings as JSON
  --help   this text

exit: 0 no findings, 1 findings, 2 usage error or unreadable file

rules:
${Object.entries(RULES).map(([k, v]) => '  ' + k.padEnd(26) + v).join('\n')}
`;

function main(argv) {
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean' }, json: { type: 'boolean' } } });
  } catch (err) {
    process.stderr.write('bundle-check: ' + err.message + '\n');
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.positionals.length === 0) {
    process.stderr.write('bundle-check: no file given (try --help)\n');
    return 2;
  }
  let total = 0;
  const all = [];
  for (const file of args.positionals) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      process.stderr.write('bundle-check: cannot read ' + file + ': ' + err.message + '\n');
      return 2;
    }
    let sourceMap;
    const mapFile = file + '.map';
    if (existsSync(mapFile)) {
      try {
        sourceMap = JSON.parse(readFileSync(mapFile, 'utf8'));
        const dir = dirname(resolve(mapFile));
        sourceMap.sources = sourceMap.sources.map((s) => relative(process.cwd(), resolve(dir, (sourceMap.sourceRoot || '') + s)));
        sourceMap.sourceRoot = '';
      } catch {
        sourceMap = undefined;
      }
    }
    const findings = checkBundle(text, { fileName: file, sourceMap });
    total += findings.length;
    if (args.values.json) all.push({ file, findings });
    else for (const f of findings) process.stdout.write(formatFinding(f, file) + '\n');
  }
  if (args.values.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
  else if (total === 0) process.stdout.write('bundle-check: ' + args.positionals.length + ' file(s), no findings\n');
  return total === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
