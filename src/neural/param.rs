//! Parser for ncnn's text `.param` format: the graph (layer types, names, blob wiring) and each
//! layer's numbered parameters. It only reads text; what the numbers mean is up to the layers.
//!
//! Format: a magic line `7767517`, a line `layer_count blob_count`, then one line per layer:
//! `Type name bottom_count top_count bottoms… tops… id=value …`. A value is an integer, a float
//! (it contains `.`, `e` or `E`), or, for ids ≤ −23300, an array `-233xx=n,v1,…,vn` stored
//! under id `−id − 23300`. Every error names the line (1-based) and, once known, the layer.

use std::collections::{BTreeMap, HashSet};

use super::ModelError;

/// The magic number on the first line of every text `.param` file.
pub const MAGIC: &str = "7767517";

/// ncnn keeps at most this many parameter ids per layer.
const MAX_PARAM_ID: i32 = 32;

/// One parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i32),
    Float(f32),
    /// Array values, converted to f32.
    Array(Vec<f32>),
}

/// One layer line.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDecl {
    /// 1-based line number in the `.param` text.
    pub line: usize,
    pub kind: String,
    pub name: String,
    pub bottoms: Vec<String>,
    pub tops: Vec<String>,
    pub params: BTreeMap<i32, Value>,
}

/// A parsed `.param` file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamFile {
    pub blob_count: usize,
    pub layers: Vec<LayerDecl>,
}

impl LayerDecl {
    fn error(&self, reason: String) -> ModelError {
        ModelError::Param {
            line: self.line,
            layer: Some(self.name.clone()),
            reason,
            file: None,
        }
    }

    /// An integer parameter, `default` when absent.
    pub fn int(&self, id: i32, default: i32) -> Result<i32, ModelError> {
        match self.params.get(&id) {
            None => Ok(default),
            Some(Value::Int(v)) => Ok(*v),
            Some(other) => Err(self.error(format!(
                "parameter {id} of {} must be an integer, found {other:?}",
                self.kind
            ))),
        }
    }

    /// A non-negative integer parameter (a size or count), `default` when absent.
    pub fn count(&self, id: i32, default: usize) -> Result<usize, ModelError> {
        match self.params.get(&id) {
            None => Ok(default),
            Some(Value::Int(v)) if *v >= 0 => Ok(*v as usize),
            Some(other) => Err(self.error(format!(
                "parameter {id} of {} must be a non-negative integer, found {other:?}",
                self.kind
            ))),
        }
    }

    /// A float parameter (integers are converted), `default` when absent.
    pub fn float(&self, id: i32, default: f32) -> Result<f32, ModelError> {
        match self.params.get(&id) {
            None => Ok(default),
            Some(Value::Float(v)) => Ok(*v),
            Some(Value::Int(v)) => Ok(*v as f32),
            Some(other) => Err(self.error(format!(
                "parameter {id} of {} must be a number, found {other:?}",
                self.kind
            ))),
        }
    }

    /// An array parameter (stored under its positive id), empty when absent.
    pub fn array(&self, id: i32) -> Result<Vec<f32>, ModelError> {
        match self.params.get(&id) {
            None => Ok(Vec::new()),
            Some(Value::Array(v)) => Ok(v.clone()),
            Some(other) => Err(self.error(format!(
                "parameter {id} of {} must be an array (written -{}=n,…), found {other:?}",
                self.kind,
                23300 + id
            ))),
        }
    }
}

fn param_error(line: usize, layer: Option<&str>, reason: impl Into<String>) -> ModelError {
    ModelError::Param {
        line,
        layer: layer.map(str::to_string),
        reason: reason.into(),
        file: None,
    }
}

/// Parses `.param` text.
pub fn parse(text: &str) -> Result<ParamFile, ModelError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());

    let (magic_line, magic) = lines
        .next()
        .ok_or_else(|| param_error(1, None, "the file is empty; expected the magic 7767517"))?;
    if magic != MAGIC {
        return Err(param_error(
            magic_line,
            None,
            format!(
                "expected the magic {MAGIC}, found `{}`; is this a text ncnn .param file?",
                truncate(magic)
            ),
        ));
    }

    let (count_line, counts) = lines.next().ok_or_else(|| {
        param_error(
            magic_line + 1,
            None,
            "missing the `layer_count blob_count` line",
        )
    })?;
    let mut numbers = counts.split_whitespace();
    let mut next_count = |what: &str| -> Result<usize, ModelError> {
        let token = numbers.next().ok_or_else(|| {
            param_error(
                count_line,
                None,
                format!("missing the {what} on the count line"),
            )
        })?;
        token.parse::<usize>().map_err(|_| {
            param_error(
                count_line,
                None,
                format!("the {what} `{}` is not a count", truncate(token)),
            )
        })
    };
    let layer_count = next_count("layer count")?;
    let blob_count = next_count("blob count")?;
    if numbers.next().is_some() {
        return Err(param_error(
            count_line,
            None,
            "the count line has more than two numbers",
        ));
    }

    let mut layers = Vec::new();
    let mut names = HashSet::new();
    let mut blobs = HashSet::new();
    for (line, text) in lines {
        let layer = parse_layer(line, text)?;
        if layers.len() == layer_count {
            return Err(param_error(
                line,
                Some(&layer.name),
                format!("the header declares {layer_count} layers but there are more lines"),
            ));
        }
        if !names.insert(layer.name.clone()) {
            return Err(param_error(
                line,
                Some(&layer.name),
                "another layer already has this name",
            ));
        }
        for blob in layer.bottoms.iter().chain(&layer.tops) {
            blobs.insert(blob.clone());
        }
        layers.push(layer);
    }
    if layers.len() != layer_count {
        return Err(param_error(
            count_line,
            None,
            format!(
                "the header declares {layer_count} layers but the file has {}",
                layers.len()
            ),
        ));
    }
    if blobs.len() != blob_count {
        return Err(param_error(
            count_line,
            None,
            format!(
                "the header declares {blob_count} blobs but the layers name {}",
                blobs.len()
            ),
        ));
    }
    Ok(ParamFile { blob_count, layers })
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

fn parse_layer(line: usize, text: &str) -> Result<LayerDecl, ModelError> {
    let mut tokens = text.split_whitespace();
    let kind = tokens
        .next()
        .ok_or_else(|| param_error(line, None, "empty layer line"))?
        .to_string();
    let name = tokens
        .next()
        .ok_or_else(|| param_error(line, None, format!("the {kind} layer has no name")))?
        .to_string();
    let err = |reason: String| param_error(line, Some(&name), reason);

    let mut count = |what: &str| -> Result<usize, ModelError> {
        let token = tokens
            .next()
            .ok_or_else(|| err(format!("missing the {what} count")))?;
        token.parse::<usize>().map_err(|_| {
            err(format!(
                "the {what} count `{}` is not a count",
                truncate(token)
            ))
        })
    };
    let bottom_count = count("input blob")?;
    let top_count = count("output blob")?;

    let mut take_blobs = |n: usize, what: &str| -> Result<Vec<String>, ModelError> {
        let mut blobs = Vec::new();
        for i in 0..n {
            let token = tokens.next().ok_or_else(|| {
                err(format!(
                    "declares {n} {what} blobs but names only {i}; check the counts"
                ))
            })?;
            if token.contains('=') {
                return Err(err(format!(
                    "declares {n} {what} blobs but names only {i} before its parameters"
                )));
            }
            blobs.push(token.to_string());
        }
        Ok(blobs)
    };
    let bottoms = take_blobs(bottom_count, "input")?;
    let tops = take_blobs(top_count, "output")?;

    let mut params = BTreeMap::new();
    for token in tokens {
        let (key, value) = token.split_once('=').ok_or_else(|| {
            err(format!(
                "`{}` is not a parameter (id=value); check the blob counts",
                truncate(token)
            ))
        })?;
        let id: i32 = key
            .parse()
            .map_err(|_| err(format!("parameter id `{}` is not a number", truncate(key))))?;
        if id <= -23300 {
            let id = -(id + 23300);
            if id >= MAX_PARAM_ID {
                return Err(err(format!("array parameter id {id} is out of range")));
            }
            params.insert(id, Value::Array(parse_array(value).map_err(&err)?));
        } else if (0..MAX_PARAM_ID).contains(&id) {
            params.insert(id, parse_scalar(value).map_err(&err)?);
        } else {
            return Err(err(format!("parameter id {id} is out of range (0..32)")));
        }
    }
    Ok(LayerDecl {
        line,
        kind,
        name,
        bottoms,
        tops,
        params,
    })
}

fn is_float(s: &str) -> bool {
    s.contains(['.', 'e', 'E'])
}

fn parse_float(s: &str) -> Result<f32, String> {
    let v: f32 = s
        .parse()
        .map_err(|_| format!("`{}` is not a number", truncate(s)))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("`{}` is not a finite number", truncate(s)))
    }
}

fn parse_scalar(s: &str) -> Result<Value, String> {
    if is_float(s) {
        Ok(Value::Float(parse_float(s)?))
    } else {
        s.parse::<i32>()
            .map(Value::Int)
            .map_err(|_| format!("`{}` is not an integer", truncate(s)))
    }
}

fn parse_array(s: &str) -> Result<Vec<f32>, String> {
    let mut parts = s.split(',');
    let n: usize = parts
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("array `{}` does not start with its length", truncate(s)))?;
    let values = parts
        .map(|p| {
            if is_float(p) {
                parse_float(p)
            } else {
                p.parse::<i32>()
                    .map(|v| v as f32)
                    .map_err(|_| format!("`{}` is not a number", truncate(p)))
            }
        })
        .collect::<Result<Vec<f32>, String>>()?;
    if values.len() != n {
        return Err(format!(
            "array `{}` declares {n} values but has {}",
            truncate(s),
            values.len()
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIFU_LIKE: &str = "7767517
3 3
Input            input   0 1 data 0=16 1=16 2=3
Convolution      conv1   1 1 data c1 0=4 1=3 5=1 6=108 9=2 -23310=1,0.100000
Deconvolution    conv2   1 1 c1 out 0=3 1=4 3=2 4=3 5=1 6=192
";

    #[test]
    fn parses_layers_params_and_arrays() {
        let file = parse(WAIFU_LIKE).unwrap();
        assert_eq!(file.blob_count, 3);
        assert_eq!(file.layers.len(), 3);
        let conv = &file.layers[1];
        assert_eq!(conv.line, 4);
        assert_eq!(conv.kind, "Convolution");
        assert_eq!(conv.bottoms, vec!["data"]);
        assert_eq!(conv.tops, vec!["c1"]);
        assert_eq!(conv.int(0, 0).unwrap(), 4);
        assert_eq!(conv.int(4, 0).unwrap(), 0);
        assert_eq!(conv.array(10).unwrap(), vec![0.1]);
        assert_eq!(conv.float(1, 0.0).unwrap(), 3.0);
    }

    #[test]
    fn floats_in_exponent_form() {
        let text = "7767517\n1 2\nInterp r 1 1 a b 0=3 1=5.000000e-01 2=2\n";
        let file = parse(text).unwrap();
        assert_eq!(file.layers[0].float(1, 1.0).unwrap(), 0.5);
        assert_eq!(file.layers[0].float(2, 1.0).unwrap(), 2.0);
        assert!(file.layers[0].int(1, 0).is_err());
    }

    fn err_text(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_line_and_layer() {
        assert!(err_text("").contains("magic"));
        assert!(err_text("7767518\n1 1\n").contains("7767518"));
        let e = err_text("7767517\n2 3\nInput in 0 1 data\n");
        assert!(e.contains("2 layers") && e.contains("has 1"), "{e}");
        let e = err_text("7767517\n1 2\nReLU r 1 1 a b 0\n");
        assert!(e.contains("line 3") && e.contains("`r`"), "{e}");
        let e = err_text("7767517\n1 2\nReLU r 2 1 a b\n");
        assert!(e.contains("1 output blobs but names only 0"), "{e}");
        let e = err_text("7767517\n1 2\nReLU r 1 1 a b 0=x\n");
        assert!(e.contains("not an integer"), "{e}");
        let e = err_text("7767517\n1 2\nReLU r 1 1 a b -23310=2,1.0\n");
        assert!(e.contains("declares 2 values"), "{e}");
        let e = err_text("7767517\n1 5\nReLU r 1 1 a b\n");
        assert!(e.contains("5 blobs"), "{e}");
        let e = err_text("7767517\n2 2\nReLU r 1 1 a b\nReLU r 1 1 b a\n");
        assert!(e.contains("line 4") && e.contains("already"), "{e}");
        let e = err_text("7767517\n1 2\nReLU r 1 1 a b 40=1\n");
        assert!(e.contains("out of range"), "{e}");
    }
}
