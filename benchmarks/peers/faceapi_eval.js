// Runs face-api.js (its bundled models, WASM backend) on a batch of RGB face images.
// Called by benchmarks/peers.py:
//   node faceapi_eval.js IMAGES.u8 N H W OUT.json [--detect]
// IMAGES.u8 holds N uint8 RGB images of H x W, one after another. Without --detect each
// image is taken as the face crop (as given to every model in the comparison); with
// --detect, face-api first finds the face itself (SSD MobileNet + 68 landmarks), as its
// users run it, and an image where it finds none is reported as such.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

async function main() {
  const [file, n, h, w, out] = process.argv.slice(2, 7);
  const detect = process.argv.includes('--detect');
  const [N, H, W] = [Number(n), Number(h), Number(w)];
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
  if (detect) {
    await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
    await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  }
  const data = fs.readFileSync(file);
  if (data.length !== N * H * W * 3) throw new Error(`${file}: ${data.length} bytes, expected ${N}x${H}x${W}x3`);
  const results = [];
  const t0 = performance.now();
  const batch = detect ? 1 : 32;
  for (let start = 0; start < N; start += batch) {
    const tensors = [];
    for (let i = start; i < Math.min(N, start + batch); i += 1) {
      const bytes = data.subarray(i * H * W * 3, (i + 1) * H * W * 3);
      tensors.push(tf.tensor3d(Int32Array.from(bytes), [H, W, 3], 'int32'));
    }
    if (detect) {
      const r = await faceapi.detectSingleFace(tensors[0], new faceapi.SsdMobilenetv1Options({ minConfidence: 0.3 }))
        .withFaceLandmarks().withFaceExpressions().withAgeAndGender();
      results.push(r ? { found: true, age: r.age, gender: r.gender, expressions: r.expressions } : { found: false });
    } else {
      const ag = await faceapi.nets.ageGenderNet.predictAgeAndGender(tensors);
      const ex = await faceapi.nets.faceExpressionNet.predictExpressions(tensors);
      const agl = Array.isArray(ag) ? ag : [ag];
      const exl = Array.isArray(ex) ? ex : [ex];
      for (let k = 0; k < tensors.length; k += 1) {
        results.push({ found: true, age: agl[k].age, gender: agl[k].gender, expressions: exl[k] });
      }
    }
    tensors.forEach((t) => t.dispose());
  }
  const seconds = (performance.now() - t0) / 1000;
  fs.writeFileSync(out, JSON.stringify({ version: faceapi.version, backend: tf.getBackend(), seconds, results }));
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
