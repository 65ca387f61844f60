// Building elements without innerHTML: every text from the API goes in as text, never as markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// A redraw keeps the keyboard where it was. Live updates redraw what an agent may be standing on
// (a chat in the list, a button in the conversation's head); without this the focused element
// leaves the page, focus falls back to the document, and a keyboard or screen-reader user is
// thrown to the top in the middle of a Tab or an Enter. The new content's element with the same
// identity (its id, or its tag and data-* attributes) takes the focus back.
export function replace(element, ...children) {
  const identity = focusedIdentity(element);
  element.replaceChildren();
  append(element, children);
  if (identity && !element.contains(document.activeElement)) element.querySelector(identity)?.focus({ preventScroll: true });
  return element;
}

function focusedIdentity(container) {
  const focused = document.activeElement;
  if (!focused || focused === container || !container.contains(focused)) return null;
  if (focused.id) return `#${CSS.escape(focused.id)}`;
  const data = Object.entries(focused.dataset);
  if (!data.length) return null;
  const attribute = (name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return focused.localName + data.map(([name, value]) => `[data-${attribute(name)}="${CSS.escape(value)}"]`).join("");
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children.flat(Infinity)) if (child) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}
