"""Verbatim copies of DeepFD's monitor functions, for the differential test of `detectors/deepfd.py`.

From ArabelaTso/DeepFD @9fe089510cf10af35b0c2cba024d9732a1048df4, `CodeBook/Callbacks/Monitor.py`
L27-53 and L72-234 (the pure NumPy functions; the Keras-dependent `get_weights` and the class are left
out). Copyright the DeepFD authors, licensed under the Apache License 2.0
(https://www.apache.org/licenses/LICENSE-2.0); unchanged but for this docstring and the import.
"""
# flake8: noqa
import numpy as np


def has_NaN_or_Inf(output):
    if output[0] is None:
        return False
    output = np.array(output)
    result = (np.isnan(output).any() or np.isinf(output).any())
    return result


def is_constant_array(output):
    return len(np.unique(np.array(output))) == 1


def gradient_zero_radio(gradient_list):
    kernel = []
    bias = []
    total_zero = 0
    total_size = 0
    for i in range(len(gradient_list)):
        zeros = np.sum(gradient_list[i] == 0)
        total_zero += zeros
        total_size += gradient_list[i].size
        if i % 2 == 0:
            kernel.append(zeros / gradient_list[i].size)
        else:
            bias.append(zeros / gradient_list[i].size)
    total = float(total_zero) / float(total_size)
    return total, kernel, bias

def max_delta_acc(acc_list):
    max_delta = 0
    for i in range(len(acc_list) - 1):
        if acc_list[i + 1] - acc_list[i] > max_delta:
            max_delta = acc_list[i + 1] - acc_list[i]
    return max_delta


def gradient_norm(gradient_list):
    assert len(gradient_list) % 2 == 0
    norm_kernel_list = []
    norm_bias_list = []
    for i in range(int(len(gradient_list) / 2)):
        # average_kernel_list.append(np.mean(np.abs(gradient_list[2*i])))
        # average_bias_list.append(np.mean(np.abs(gradient_list[2*i+1])))
        norm_kernel_list.append(np.linalg.norm(np.array(gradient_list[2 * i])))
        norm_bias_list.append(np.linalg.norm(np.array(gradient_list[2 * i + 1])))
    return norm_kernel_list, norm_bias_list


def ol_judge(history, threshold, rate):
    acc = history['acc']
    maximum = []
    minimum = []
    count = 0
    for i in range(len(acc)):
        if i == 0 or i == len(acc) - 1:
            continue
        if acc[i] - acc[i - 1] >= 0 and acc[i] - acc[i + 1] >= 0:
            maximum.append(acc[i])
        if acc[i] - acc[i - 1] <= 0 and acc[i] - acc[i + 1] <= 0:
            minimum.append(acc[i])
    for i in range(min(len(maximum), len(minimum))):
        if maximum[i] - minimum[i] >= threshold:
            count += 1
    if count >= rate * len(acc):
        return True
    else:
        return False


def loss_issue(feature_dic, history, total_epoch, satisfied_acc, checkgap,
               unstable_threshold=0.05, judgment_point=0.3, unstable_rate=0.25, epsilon=10e-3, sc_threshold=0.01):
    train_loss = history['loss']
    train_acc = history['acc']
    test_loss = history['val_loss']
    test_acc = history['val_acc']
    count = 0

    feature_dic['loss'] = train_loss[-1] if train_loss[-1] else 0.0
    feature_dic['acc'] = train_acc[-1] if train_acc[-1] else 0.0
    feature_dic['val_loss'] = test_loss[-1] if test_loss[-1] else 0.0
    feature_dic['val_acc'] = test_acc[-1] if test_acc[-1] else 0.0

    if train_loss:
        if has_NaN_or_Inf(test_loss) or has_NaN_or_Inf(train_loss) or (
                (not test_loss[-1] is None) and test_loss[-1] >= 1e+5):
            feature_dic['nan_loss'] += 1
            return feature_dic

        if has_NaN_or_Inf(train_acc) or has_NaN_or_Inf(test_acc):
            # or ((not train_acc[-1] is None) and test_acc[-1] >= 1e+5):
            feature_dic['nan_acc'] += 1
            return feature_dic
        current_epoch = len(train_loss)

        unstable_count = 0
        total_count = current_epoch - 1
        if current_epoch >= judgment_point * total_epoch:
            if test_acc[-1] is not None:
                if (train_acc[-1] <= 0.9 and train_acc[-1] - test_acc[-1] >= 0.1) \
                        or (train_acc[-1] > 0.9 and train_acc[-1] - test_acc[-1] >= 0.07):
                    feature_dic['test_not_well'] += 1

            if has_NaN_or_Inf(train_acc) or has_NaN_or_Inf(test_acc):
                feature_dic['nan_acc'] = True

            bad_count = 0

            for i in range(total_count):
                try:
                    if ((train_loss[-i - 1] - train_loss[-i - 2]) < -epsilon) and (
                            (test_loss[-i - 1] - test_loss[-i - 2]) > epsilon):  # train decrease and test increase.
                        bad_count += 1
                except TypeError:
                    pass
                else:
                    feature_dic['test_turn_bad'] = bad_count
                    break

            if ol_judge(history, unstable_threshold, unstable_rate):
                feature_dic['unstable_loss'] = True
            if not test_acc[0] is None and not train_acc[0] is None:
                if max(test_acc) < satisfied_acc or max(train_acc) < satisfied_acc:
                    feature_dic['not_converge'] = True
                if max_delta_acc(test_acc) < sc_threshold and max_delta_acc(train_acc) < sc_threshold:
                    feature_dic['sc_accuracy'] = True
            # if loss increases
            if len(train_loss) > 1:
                feature_dic['increase_loss'] += int(history['loss'][-1] > history['loss'][-2])
            # if acc decrease
            if len(train_acc) > 1:
                feature_dic['decrease_acc'] += int(history['acc'][-1] < history['acc'][-2])

    return feature_dic


def weights_issue(feature_dic, weights, last_weights, threshold_large=5, threshold_change=0.1):
    """[summary]
    :param
        weights ([type]): [description]
        threshold ([type]): [description]
        'large_weight':0,
        'nan_weight':False,
        'weight_change_little':0,
         feature_dic: dict of features
    """
    for i in range(len(weights)):
        if has_NaN_or_Inf(weights[i]):
            feature_dic['nan_weight'] = True
            return feature_dic
    for j in range(len(weights)):
        if np.abs(weights[j]).max() > threshold_large:
            feature_dic['large_weight'] += 1
            break

    for cur, last in zip(weights, last_weights):
        if np.mean(cur) == np.mean(last):
            feature_dic['cons_mean_weight'] += 1
        if np.std(cur) == np.std(last):
            feature_dic['cons_std_weight'] += 1

    return feature_dic


def gradient_issue(feature_dic, gradient_list, threshold_low=1e-3, threshold_low_1=1e-4, threshold_high=70,
                   threshold_die_1=0.7):
    [norm_kernel, avg_bias, gra_rate], \
    [total_ratio, kernel_ratio, bias_ratio, max_zero] \
        = gradient_message_summary(gradient_list)

    for i in range(len(gradient_list)):
        if has_NaN_or_Inf(gradient_list[i]):
            feature_dic['nan_gradient'] = True
            return feature_dic

    if gra_rate < threshold_low and norm_kernel[0] < threshold_low_1:
        feature_dic['vanish_gradient'] += 1
    if gra_rate > threshold_high:
        feature_dic['explode_gradient'] += 1
    if total_ratio >= threshold_die_1:  # or max_zero>=threshold_die_2
        feature_dic['died_relu'] += 1
    return feature_dic


def gradient_message_summary(gradient_list):
    total_ratio, kernel_ratio, bias_ratio = gradient_zero_radio(
        gradient_list)
    max_zero = max(kernel_ratio)

    norm_kernel, norm_bias = gradient_norm(gradient_list)
    gra_rate = (norm_kernel[0] / norm_kernel[-1])
    return [norm_kernel, norm_bias, gra_rate], [total_ratio, kernel_ratio, bias_ratio, max_zero]
