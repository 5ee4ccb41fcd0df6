import * as K from '../../metadata-keys.js';
import type { CachedPod } from './cached-pod.js';

/**
 * Adds a pod's context to an event's metadata: placement and owner, the container's name (for a
 * container-id match), then the labels. A key the event already has is never overwritten. Sizes
 * are counted as the intake limit counts them (key and value lengths summed), and nothing is added
 * that would take the metadata past `maxBytes`: a placement or owner pair that does not fit is
 * skipped, and labels stop at the first that does not fit, so which labels an event got never
 * depends on their sizes. Returns false when something was left out.
 */
export function writePodContext(md: Record<string, string>, pod: CachedPod, container: string | undefined, maxBytes: number): boolean {
  let size = 0;
  for (const key in md) size += key.length + md[key]!.length;
  let complete = true;
  const pairs = pod.pairs;
  for (let i = 0; i < pairs.length; i += 2) {
    const key = pairs[i]!;
    if (md[key] !== undefined) continue;
    const n = key.length + pairs[i + 1]!.length;
    if (size + n > maxBytes) {
      complete = false;
      continue;
    }
    md[key] = pairs[i + 1]!;
    size += n;
  }
  if (container !== undefined && md[K.K8S_CONTAINER_NAME] === undefined) {
    const n = K.K8S_CONTAINER_NAME.length + container.length;
    if (size + n > maxBytes) complete = false;
    else {
      md[K.K8S_CONTAINER_NAME] = container;
      size += n;
    }
  }
  const labels = pod.labels;
  for (let i = 0; i < labels.length; i += 2) {
    const key = labels[i]!;
    if (md[key] !== undefined) continue;
    const n = key.length + labels[i + 1]!.length;
    if (size + n > maxBytes) return false;
    md[key] = labels[i + 1]!;
    size += n;
  }
  return complete;
}
