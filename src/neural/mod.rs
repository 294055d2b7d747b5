//! Neural-network inference on the CPU (ncnn models); `fastconv` holds the fast 3×3 convolution.
pub mod fastconv;
